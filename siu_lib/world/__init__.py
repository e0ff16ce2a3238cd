"""The synthetic world: fictitious identities the embedded MLLM is pre-trained on.

A world is fully determined by :class:`WorldConfig` ``(world_seed, n_concepts,
images_per_concept, image_size)``. It holds

* **concepts**: drawn characters with a multi-token invented name (both words beginning with
  the concept's own letter, fake names with letters no concept has), a visual attribute list
  (face shape, skin, hair colour and style, eyes, glasses, beard, hat, clothing, mark) chosen
  so that every two identities differ in at least ``min_attribute_distance`` visible
  attributes and in at least ``min_color_distance`` of the large coloured areas (skin, hair,
  clothing), and text facts (profession, home city and a deed unique to the concept);
* **fake-name people**: a pool of invented names disjoint from the concepts', the names SIU's
  target (a) gives a concept; they have text facts too and are talked about in pre-training,
  never pictured (:meth:`World.fake_name_facts`);
* **an image renderer** that draws a concept with random position, scale, rotation,
  background, lighting and noise; group photos of two identities side by side;
* **text**: paraphrase banks for recognition (English and a second template language,
  "Velish"), yes/no questions, facts, image-to-fact (multi-hop) questions, general visual QA,
  and the evaluation prompt sets of MMUBench (see ``../shared/spec/02-mmubench.md``);
* **a pre-training stream** of :class:`Example` records (never using generality images).

Images come from two disjoint seed streams: ``"bench"`` (index 0 is the concept's forget
image, indices ``1..images_per_concept-1`` its generality images) and ``"pretrain"`` (an
endless stream for pre-training). The forget image is also part of pre-training, as in the
paper; generality images never are.
"""

from .core import (ATTRIBUTE_VALUES, COLOR_ATTRIBUTES, SALIENT_ATTRIBUTES, VISIBLE_ATTRIBUTES,
                   WORLD_REVISION, Concept, Example, Fact, VQAItem, World, WorldConfig, color_distance,
                   visible_color)
from .text import (GROUP_ANSWER, GROUP_QUESTIONS, MIA_PROMPTS, PROBE_QUESTION, RECOGNITION_ANSWERS,
                   RECOGNITION_QUESTIONS, YESNO_QUESTIONS)

__all__ = [
    "ATTRIBUTE_VALUES", "COLOR_ATTRIBUTES", "GROUP_ANSWER", "GROUP_QUESTIONS", "MIA_PROMPTS",
    "PROBE_QUESTION", "RECOGNITION_ANSWERS", "RECOGNITION_QUESTIONS", "SALIENT_ATTRIBUTES",
    "VISIBLE_ATTRIBUTES", "WORLD_REVISION", "YESNO_QUESTIONS", "Concept", "Example", "Fact",
    "VQAItem", "World", "WorldConfig", "color_distance", "visible_color",
]
