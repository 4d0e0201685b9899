//! (being written: see docs/adr/0008-agents-and-pipeline.md)
