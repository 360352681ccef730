"""hangar-synth pipeline: COCO annotation, split, weights, training, evaluation, reports.

Pure Python (no bpy). Heavy imports (torch) happen inside the stage modules
that need them, so `import pipeline` and Snakemake dry runs stay fast.
"""
__version__ = "0.1.0"
