"""From a source tree to analyzer runs: the analyze use case, the analyzers, the sandboxes, the compile driver."""
