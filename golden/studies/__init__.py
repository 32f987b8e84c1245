"""One module per results chapter: its study's tables, figures and verdict as functions
of the stored runs, so each is tested alone and drawn without executing the chapter."""
