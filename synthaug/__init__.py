"""synthaug: validated synthetic data from GANs, VAEs and RBMs, as pipeline stages.

The public API is imported lazily so `import synthaug` (and the CLI's --help) stays fast.
"""

__version__ = "0.1.0"
__all__ = ["run_pipeline", "load_config", "load_generator", "get_generator", "__version__"]


def __getattr__(name: str):
    if name == "run_pipeline":
        from synthaug.pipeline.run import run_pipeline

        return run_pipeline
    if name == "load_config":
        from synthaug.config.pipeline import load_config

        return load_config
    if name in ("load_generator", "get_generator"):
        from synthaug.generators import base

        return getattr(base, name)
    raise AttributeError(f"module 'synthaug' has no attribute {name!r}")
