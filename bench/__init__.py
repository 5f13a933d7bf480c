"""`make bench`: the engine's floor beside the product, on a stack the bench starts for itself."""
