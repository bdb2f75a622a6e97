"""synthaug: validated synthetic data from GANs, VAEs and RBMs, as pipeline stages.

The public API is imported lazily so `import synthaug` (and the CLI's --help) stays fast:
run_pipeline, load_config, evaluate, get_generator, load_generator, __version__.
"""

__version__ = "0.2.0"
__all__ = ["run_pipeline", "load_config", "evaluate", "load_generator", "get_generator", "__version__"]

_LAZY = {
    "run_pipeline": ("synthaug.pipeline.run", "run_pipeline"),
    "load_config": ("synthaug.config.pipeline", "load_config"),
    "evaluate": ("synthaug.validation.evaluate", "evaluate"),
    "load_generator": ("synthaug.generators.base", "load_generator"),
    "get_generator": ("synthaug.generators.base", "get_generator"),
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'synthaug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
