"""What every stage shares and nothing stage-specific.

Errors, units, table layouts, records, the cached-stage helper, the work-directory
paths and the shipped files.  Imports no stage.
"""
