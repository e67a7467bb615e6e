"""Using a trained localizer: ``detector`` (weakloc.load, Detector), ``batch`` (running a model),
``maps`` (maps to image size), ``saved`` (the .npz / heatmap-folder formats), ``folder`` (`weakloc predict`'s
output folder), ``render`` (overlays and map/mask images).

Kept free of imports so that each part loads only what it needs."""
