"""Document import in named stages (Docling-style): conversion to text, normalisation of the
crawled/printed layout into paragraphs and tables, the header, then extraction rules."""
