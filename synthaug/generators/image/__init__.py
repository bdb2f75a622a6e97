"""Class-conditional image families: `image_gan`, `image_vae`, `image_rbm` (one file each).

`base.py` holds the image half of the contract (`ImageGenerator`, `ImageBatch`), `fidelity.py`
the epoch score, `nets.py` the layers the conv families share. Import a family from its module
(or through `synthaug.generators.base.get_generator`); this package imports nothing heavy.
"""
