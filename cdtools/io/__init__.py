"""Reading and writing rasters: files, pairs and series of dates on one grid,
COGs, the data manifest.
"""
