"""Reports of a run: report.json, report.html and junit.xml content (io/ writes the files)."""
