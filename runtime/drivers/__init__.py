"""HAL drivers that need third-party libraries (and so cannot live in ``hal``): ``mqtt``."""
