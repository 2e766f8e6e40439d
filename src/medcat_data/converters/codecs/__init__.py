"""Format codecs: DICOM, volumes, raster images, VCF, tables (format knowledge only)."""
