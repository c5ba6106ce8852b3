"""scVI (Lopez et al. 2018; scvi-tools, BSD-3-Clause) as a psysc model: a saved ``SCVI`` embeds with its encoder.

:func:`psysc.models.load` reads a folder with an scvi-tools ``model.pt`` (what ``SCVI.save(dir)`` writes) or the
registry entry ``"scvi-census"`` (the CELLxGENE Census scVI model), without scvi-tools and without unrestricted
unpickling (:mod:`psysc.models.scvi._format`); :mod:`psysc.models.scvi._model` runs the encoder. Training a new
model on your data is ``psysc.tl.embed(adata, model="scvi")`` (needs ``pip install scvi-tools``).

Importing this package does not import torch.

Examples
--------
>>> import psysc
>>> model = psysc.models.load("my_scvi_model/")  # a folder with model.pt  # doctest: +SKIP
>>> psysc.tl.embed(adata, model=model, key_added="X_scvi")  # doctest: +SKIP

"""

__all__: list[str] = []
