"""Pipeline configuration: typed sections, packaged presets, key=value overrides."""
