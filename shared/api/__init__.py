"""Request models shared by more than one function."""
