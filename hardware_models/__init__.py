"""Chip models: the same Network under a chip's number formats and step rules."""
