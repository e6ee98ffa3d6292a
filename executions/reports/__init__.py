"""The evidence report of an execution: read once (evidence), then shown as the report page,
drawn as a PDF (pdf) or listed as CSV (spreadsheet)."""
