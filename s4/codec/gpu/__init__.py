"""The GPU path: the batching queue, engine and pool, the device backends (nvCOMP, DietGPU), promotion and columns."""
