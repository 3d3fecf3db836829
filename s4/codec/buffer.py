"""What the codec layer accepts as bytes: anything with the buffer protocol that Python types name.

A leaf module, so the stored format (``format/``) and the codecs can share the alias without
importing the Codec interface.
"""

Buffer = bytes | bytearray | memoryview
