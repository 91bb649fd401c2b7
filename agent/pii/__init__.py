"""Personal data left in served and shared folders: detectors, readers and the places to look."""
