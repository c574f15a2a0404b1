"""symgen's built-in derivations: one module per topic, collected by the engine."""
