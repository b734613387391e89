"""The re-ID network as a component: the torchreid adapter (the only module that imports
torchreid), recipes, the training loop, checkpoints and the user cache, ranking, and the frozen
identity network that training and metrics use."""
