"""cognitive-core's shared library: everything the functions do lives here, once."""
