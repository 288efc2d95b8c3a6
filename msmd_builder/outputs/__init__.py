"""Pictures and pages for people: PNG overlays, the HTML piece viewer and the HTML report."""
