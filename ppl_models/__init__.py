"""ppl_models: a Pyro model zoo of deep latent-variable models for multimedia sequences."""

__version__ = "0.1.0"
