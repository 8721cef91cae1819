"""The stages of segmenting one image, in order: the one definition the pipeline, the worker, the job table
and the API share (``backend.storage.models.STAGES`` adds ``waiting`` before them).

- ``decode``: the stored or given file -> checked, normalised RGB pixels (``pipeline.decode``);
- ``model``: the network on a batch of images (``Segmenter.detect``);
- ``masks``: detections -> results: score order, boxes, run-length-encoded masks (``Segmenter.to_results``);
- ``saving``: result JSON and overlay PNG written (``pipeline.save``).
"""

DECODE = "decode"
MODEL = "model"
MASKS = "masks"
SAVING = "saving"
PIPELINE_STAGES = (DECODE, MODEL, MASKS, SAVING)
