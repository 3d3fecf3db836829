"""The S4 format as a store wrapper: compressed PUT and ranged GET, sidecars, multipart staging, reserved names."""
