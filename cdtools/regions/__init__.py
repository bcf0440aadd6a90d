"""Regions: connected change as a table and as polygons, and spot checks around them."""
