"""One folder per pipeline stage: its assets, checks and sensors beside the modules they call."""
