"""MMUBench: one on-disk format for every benchmark instance, its writers and its loader.

* :mod:`.format`: the manifest schema (documented field by field there), the records and
  :class:`Benchmark`;
* :mod:`.loader`: :func:`load_benchmark`, which checks an instance and reports every problem;
* :mod:`.synthetic`: the ``synthetic`` instance of a world (:func:`write_synthetic`,
  :func:`ensure_synthetic`);
* :mod:`.paper`: the ``paper`` instance, the paper's 20 concepts without images
  (:func:`load_paper`, :func:`write_paper_manifest`).
"""

from .format import (FORMAT_VERSION, IMAGE_SUFFIXES, MANIFEST_NAME, PROMPT_SETS,
                     SPECIFICITY_IMAGES_PER_CONCEPT, SPLITS, BenchConcept, Benchmark, GroupPhoto,
                     VQARecord)
from .loader import load_benchmark
from .paper import (PAPER_CONCEPTS, PAPER_DESCRIPTION, PaperConcept, load_paper, paper_manifest,
                    paper_manifest_path, write_paper_manifest)
from .synthetic import ensure_synthetic, synthetic_key, write_synthetic

__all__ = [
    "FORMAT_VERSION", "IMAGE_SUFFIXES", "MANIFEST_NAME", "PAPER_CONCEPTS", "PAPER_DESCRIPTION",
    "PROMPT_SETS", "SPECIFICITY_IMAGES_PER_CONCEPT", "SPLITS", "BenchConcept", "Benchmark",
    "GroupPhoto", "PaperConcept", "VQARecord", "ensure_synthetic", "load_benchmark", "load_paper",
    "paper_manifest", "paper_manifest_path", "synthetic_key", "write_paper_manifest",
    "write_synthetic",
]
