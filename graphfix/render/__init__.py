"""Everything that turns reports and graphs into text: the text/JSON report
(:mod:`.report`), SARIF, GitHub annotations, graph diffs, Graphviz dot, and
what a terminal shows (colour, spinner, progress bar, summary table)."""
