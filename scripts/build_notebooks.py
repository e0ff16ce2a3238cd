"""Write the numbered notebooks of ``notebooks/`` from the cell lists below (no outputs).

The notebooks are the committed artefact; this script is how they are edited, so that their
JSON stays clean (no outputs, no execution counts) and reviewable. Run:

    .venv/bin/python scripts/build_notebooks.py

Every notebook has a ``parameters`` cell (papermill injects ``PROFILE`` and ``SET``, the
profile's overrides for one run) and calls the library only: logic lives in ``siu_lib`` where
the tests reach it. Its metadata declares the result files it reads and writes
(:data:`NOTEBOOK_IO`), from which the chain (``siu_lib.chain``) decides what to rerun, and
whether it needs a synthetic world (skipped under a paper-scale profile); a cell
whose output nbval must not compare carries the ``nbval-ignore-output`` tag and its reason.
After editing, rerun the chain for the smoke profile and store its outputs for nbval
(``make nbval-outputs``), and for the default profile (``make reproduce``) to regenerate the
committed executed notebooks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

PARAMETERS = '''import os
PROFILE = os.environ.get("SIU_PROFILE", "default")  # papermill: -p PROFILE smoke
SET = os.environ.get("SIU_SET", "")  # overrides of profile fields for this run (siu_lib.overrides)'''

SETUP = '''import warnings
warnings.filterwarnings("ignore")
import pandas as pd
from IPython.display import display
from siu_lib.scale import resolve_profile
from siu_lib.paths import repo_relative, results_dir
from siu_lib.plots import figure_dir, save_figure
profile = resolve_profile(PROFILE, SET)
RESULTS, FIGURES = results_dir(profile.name), figure_dir(profile.name)
print(f"profile {profile.name}: results -> {repo_relative(RESULTS)}, figures -> {repo_relative(FIGURES)}")'''


def md(text: str):
    return new_markdown_cell(text.strip())


#: nbval's tag for a cell whose output is not compared with the stored smoke output
IGNORE_OUTPUT = "nbval-ignore-output"


def code(text: str, tags: tuple[str, ...] = (), ignore: str | None = None):
    """A code cell; ``ignore`` (the reason) marks its output as one nbval does not compare."""
    cell = new_code_cell(text.strip())
    if ignore:
        tags = (*tags, IGNORE_OUTPUT)
        cell.metadata["nbval_ignore_reason"] = ignore
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


NOTEBOOKS = {
    "01_build_mmubench.ipynb": [
        md("""
# 01 · Build MMUBench

MMUBench (the paper's benchmark) has 20 concepts with at least 50 images each: **one forget
image** per concept (the only image SIU ever sees) and the rest to measure **generality**. The
paper's images were never released, so this project ships two instances of one on-disk format
(`siu_lib.bench`, documented field by field in its module docstring):

* **`synthetic`** (the default): a world of fictitious identities drawn by `siu_lib.world`,
  fully determined by `(world_seed, n_concepts, images_per_concept, image_size)`;
* **`paper`**: the 20 paper concepts as a manifest without images; drop your own images in.

*Needs the synthetic world* (it builds the synthetic instance; the `paper` instance is the user's images): the chain skips this notebook under a paper-scale profile (`llava-7b`, `llava-13b`), and run by hand there it stops at its first step.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.scale import require_synthetic
require_synthetic(profile, "notebook 01")'''),
        md("## The synthetic world\nEvery two identities differ in at least `min_attribute_distance` (4) of the salient attributes and in at least two of the three large colour areas (skin, hair, clothing; the twelve clothing colours are worn evenly), so that no two share a colour signature. Names are invented and split into several tokens."),
        code('''from siu_lib.world import World
world = World(profile.world)
pd.DataFrame([{"id": c.concept_id, "name": c.name, **c.attributes,
               "deed (unique fact)": c.fact("deed").value} for c in world.concepts])'''),
        code('''sheet = world.contact_sheet(columns=min(10, len(world.concepts)), scale=2)
path = FIGURES / "contact_sheet.png"
sheet.save(path)
print("saved", repo_relative(path))
sheet'''),
        md("## Variation within one identity\nPosition, scale, rotation, background, lighting and noise vary; the forget image (left) is a clear, centred view."),
        code('''from PIL import Image
strip = Image.new("RGB", (world.config.image_size * 8, world.config.image_size))
for k in range(8):
    strip.paste(world.render(0, k), (k * world.config.image_size, 0))
strip.resize((strip.width * 2, strip.height * 2))'''),
        md("## Write and validate the instance\nThe writer renders into a temporary folder and renames it when complete; the loader validates every field and image."),
        code('''import time
from siu_lib.bench import ensure_synthetic, load_benchmark, synthetic_key
t0 = time.perf_counter()
root = ensure_synthetic(profile.world)
t1 = time.perf_counter()
bench = load_benchmark(root)
t2 = time.perf_counter()
print(f"instance synthetic-{synthetic_key(profile.world)}: {len(bench.concepts)} concepts, "
      f"{sum(len(bench.generality_image_paths(c.concept_id)) for c in bench.concepts)} generality images, "
      f"{len(bench.group_photos)} group photos, {len(bench.general_vqa)} general VQA items")
splits = {name: set(bench.split(name)) for name in ("forget", "generality", "specificity")}
assert not (splits["forget"] & splits["generality"]) and not (splits["generality"] & splits["specificity"])'''),
        code('''print(f"build (or cache hit) {t1 - t0:.1f} s, load with image checks {t2 - t1:.2f} s")''',
             ignore="wall time on this machine"),
        md("## The manifest\n`manifest.json` is the whole instance apart from its images: each top-level entry with its number of items, then the first concept's record (lists cut to two items)."),
        code('''import json
from siu_lib.bench.format import MANIFEST_NAME
manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
display(pd.Series({k: len(v) if isinstance(v, (list, dict)) else v for k, v in manifest.items()},
                  name=MANIFEST_NAME).to_frame())
print(json.dumps({k: v[:2] + ["..."] if isinstance(v, list) and len(v) > 2 else v
                  for k, v in manifest["concepts"][0].items()}, indent=1))'''),
        code('''c = bench.concepts[0]
pd.Series({k: v[:3] for k, v in c.prompts.items()}, name=f"prompt sets of {c.name} (first 3 each)").to_frame()'''),
        md("## The `paper` instance\nThe 20 concepts of the paper with their C-Dis probe questions and special tokens. No images ship: the loader reports which concepts still need them."),
        code('''from siu_lib.bench import load_paper
paper = load_paper(check_images=False)
display(pd.DataFrame([{"concept": p.name, "kind": p.kind, "probe question": p.probe_question,
                       "special tokens": ", ".join(p.special_tokens)} for p in paper.concepts]))
print(f"{len(paper.missing_images())} of {len(paper.concepts)} paper concepts have no images yet")'''),
    ],
    "02_pretrain_embedded_mllm.ipynb": [
        md("""
# 02 · Pre-train the embedded MLLM

No model hub is reachable here, so the default run makes its own multimodal model: a real
`transformers` **`LlavaForConditionalGeneration`** (CLIP vision tower + Llama language model,
a BPE tokenizer trained on the world's text, a `LlavaProcessor` with the LLaVA-1.5 chat
template), pre-trained on the synthetic world until it *knows* the identities. It is saved with
`save_pretrained` and loads exactly like `llava-hf/llava-1.5-7b-hf`; everything after this
notebook runs the same code on either.

Two sizes play the paper's 7B and 13B: `tiny` and `small`. Pre-training data: recognition
(English and the second template language), yes/no questions (a "no" names the person
who is shown: "No, this is X."; most negatives show one of the asked person's look-alikes, some
show a stranger, and the phrasings are not those the evaluation asks), text facts, image→fact,
general visual QA and group photos.
Pre-training has three stages, each a mixture of these tasks: identity alignment (naming the
people, a quarter of the main steps, like LLaVA's feature alignment), the full mixture, and a
grounding stage with its own learning-rate schedule in which half of the records are yes/no
questions, so that the model, which by then names every identity, learns to weigh the asked name
against the face it sees.
Forget images are included; generality images never are. The people of the fake-name pool,
whose names SIU's target (a) gives the concepts, are talked about in text only (their facts,
never a picture), as a real LLM has read countless names, and named from a description of
their facts ("Who is the baker from Ostrik famous for ...?"): every fake name is then a name
the model can say unprompted.
Tiny's vision tower starts its position embeddings from a 2-D sine-cosine table, so every
patch of a column shares a column code: in a group photo the language model must tell which
name goes with the left person and which with the right one (small, compute-bound, keeps
CLIP's random init, with which it learns the identities faster).
Checkpoints are cached (git-ignored) by a key of every config that shapes them.

*Needs the synthetic world* (a real model is not pre-trained here): the chain skips this notebook under a paper-scale profile (`llava-7b`, `llava-13b`), and run by hand there it stops at its first step.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.scale import require_synthetic
require_synthetic(profile, "notebook 02")'''),
        code('''from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.world import World
from siu_lib.embedded import ensure_pretrained, pretrain_table
world = World(profile.world)
bench = load_benchmark(ensure_synthetic(profile.world))
checkpoints = {size: ensure_pretrained(profile.world, profile.models[size], profile.pretrain[size])
               for size in profile.models}
{size: path.name for size, path in checkpoints.items()}  # cached under data/checkpoints/<key>'''),
        md("## What the models know\nMeasured on **generality images** (never seen in pre-training), for both sizes. Targets: recognition ≥ 98% overall and ≥ 90% for every concept (`recognition_min`, the weakest), text facts ≥ 95%, general VQA ≥ 90%, second-language recognition ≥ 95%, both identities named in group photos ≥ 90%; and, since half of every generality EM is yes/no, grounded yes/no answers: *yes* to \"is `<c>` in the image?\" on a picture of `c` (`yes_to_own`) ≥ 95%, on a picture of another concept (`yes_to_other`) ≤ 5%, and on a stranger's face the model never saw (`yes_to_unknown`, `World.stranger`) ≤ 5%. The yes/no questions are the evaluation's phrasings, which pre-training never asks. `fake_name_reverse` (≥ 90%) names the people of the fake-name pool from a description of their facts, in phrasings pre-training never asks: SIU's target (a) needs a model that can say a fake name. `small` should know at least as much as `tiny` (no row worse by more than a point). The last two columns split the group photos by side: the left identity named before \"on the right\" (`group_left`) and the right identity named after it (`group_right`); a model that names one person twice fails one side."),
        code('''table, per_concept = pretrain_table(checkpoints, bench, world, images_per_concept=profile.eval_images)
from siu_lib.results import atomic_write_csv
atomic_write_csv(RESULTS / "pretrain.csv", table)
table.drop(columns="pretrain_seconds")'''),
        code('''table[["model", "pretrain_seconds"]]  # wall time of the run that built each checkpoint''',
             ignore="wall time of the machine that pre-trained the checkpoint"),
        code('''per_concept.map("{:.0%}".format)'''),
        code('''from siu_lib.plots import plot_pretrain_losses
fig = plot_pretrain_losses(checkpoints)
save_figure(fig, FIGURES / "pretrain_loss.png")'''),
        md("## A few answers\nGreedy answers of the `tiny` model on unseen images of the first concepts."),
        code('''from siu_lib.models import load_model
from siu_lib.generate import generate
model, processor = load_model(checkpoints["tiny"])
items = [(bench.load_image(bench.generality_image_paths(c.concept_id)[0]), q)
         for c in bench.concepts[:3] for q in ("Who is in this picture?", "What color is the person's shirt?",
                                               "What is the person in the picture famous for?")]
answers = generate(model, processor, items, max_new_tokens=32, progress=False)
pd.DataFrame({"question": [q for _, q in items], "answer": answers})'''),
    ],
    "03_unlearn_siu.ipynb": [
        md("""
# 03 · Single Image Unlearning, step by step

One concept, one image, six steps. This notebook walks through SIU (Li et al., NeurIPS 2024)
on the embedded `tiny` model: the one forget image, the 25 multifaceted fine-tuning records
with their token masks, the Dual Masked KL loss per step, and the model's answers before and
after. It then measures SIU's targets over several concepts and seeds, says how the embedded
profile's unlearning defaults were chosen on the same protocol (`make sweep`), and puts SIU beside
a model pre-trained without ever seeing those concepts (exact unlearning's reference).
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''import copy
from siu_lib.setting import open_setting
setting = open_setting(profile)
bench, fake_names, MODEL = setting.bench, setting.fake_names, setting.main_model
setting.check_images(setting.concept_ids(profile.unlearn_concepts))
original, processor = setting.model(MODEL)
concept = bench.concepts[0]
print(concept.concept_id, concept.name, concept.attributes)
bench.forget_image(concept.concept_id).resize((192, 192))'''),
        md("""
## The multifaceted fine-tuning data

Four targets (paper section 4.1; `siu_lib.finetune_data`): **(a)** the forget image answered
with a *fake name* (token-mask span: the fake name), **(b)** "is *c* in the image?" answered
"No" with a false description (span: the whole answer), **(c)** the concept's own text facts,
**(d)** other concepts' text facts. Below, each record's answer tokens exactly as the model is
trained on them, after `<image>` has been expanded into the image-feature positions: **red**
tokens have token mask 0 (DMK ignores them), **green** tokens are kept in the KL.
"""),
        code('''from IPython.display import HTML
from siu_lib.runs import make_target
from siu_lib.methods import get_method
from siu_lib.plots import render_token_masks
target = make_target(bench, concept.concept_id, original, processor, fake_names)
siu = get_method("siu")
records = siu.build_data(target, siu.config)
print({t: sum(r.target == t for r in records) for t in "abcd"})
HTML(render_token_masks(processor, records))'''),
        md("""
## Fig 1: the pipeline

The paper's Fig 1, drawn from the objects of this run: the concept's one forget image, one of
the records above for each target, the DMK loss, and the registered metrics and attacks that
measure the unlearned model (notebooks 04–06).
"""),
        code('''from siu_lib.plots import plot_pipeline
from siu_lib.metrics import METRICS, TABLE1_METRICS
from siu_lib.attacks import ATTACKS
fig = plot_pipeline(concept.name, bench.forget_image(concept.concept_id), records,
                    [METRICS[m].label for m in TABLE1_METRICS], [METRICS[a].label for a in ATTACKS],
                    steps=profile.unlearn.steps)
save_figure(fig, FIGURES / "fig1_pipeline.png")'''),
        md("""
## The Dual Masked KL loss

`L = α·CE + β·DMK` with α = 0.9, β = 0.75; DMK is KL(p0 ‖ pθ) over answer positions with the
token mask K_S and the vocabulary mask K_V (every token id of the concept's name). The
reference p0 is the same model with its LoRA adapters disabled. The embedded profile's
optimisation settings (LoRA rank, learning rates) are printed below; the section after the
targets says how they were chosen. With 25 records and 6 steps of 4 every record is seen at
most once, and the warm-up rounds up to one step at learning rate 0, as in the paper's scripts;
the records are drawn in a stratified order (`data_order`), so the steps see the four targets in
about their proportions rather than, by chance, both (b) records in the zero-lr first step.

First, what each mask does, on fixed tensors: a toy vocabulary of six ids (id 2 stands for the
concept's name), one sequence whose first position is the prompt and whose third lies in a mask
span. Switching a mask off shows the term it removes: K_S drops the span position from the KL,
K_V drops the name's id from every position's sum (`siu_lib.losses`).
"""),
        code('''import torch
from siu_lib.losses import answer_ce, dmk_loss, joint_loss, kl_loss
V = 6
ref_logits = torch.arange(5 * V, dtype=torch.float32).mul(0.7).sin().mul(2).reshape(1, 5, V)  # p0
logits = ref_logits + torch.arange(5 * V, dtype=torch.float32).mul(1.3).cos().reshape(1, 5, V)  # pθ
labels = torch.tensor([[-100, 1, 2, 3, 4]])   # position 0 is the prompt
token_mask = torch.tensor([[1, 1, 0, 1, 1]])  # K_S: position 2 lies in the mask span
vocab_mask = torch.ones(V).index_fill(0, torch.tensor([2]), 0)  # K_V: the name's id is 0
keep_all_ids, keep_all_positions = torch.ones(V), torch.ones_like(labels)
ce, dmk = answer_ce(logits, labels), dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask)
pd.Series({"CE": ce, "KL (no mask)": kl_loss(logits, ref_logits, labels),
           "DMK with K_S only": dmk_loss(logits, ref_logits, labels, token_mask, keep_all_ids),
           "DMK with K_V only": dmk_loss(logits, ref_logits, labels, keep_all_positions, vocab_mask),
           "DMK (K_S and K_V)": dmk, "L = 0.9 CE + 0.75 DMK": joint_loss(ce, dmk)},
          name="loss").map(float).round(5).to_frame()'''),
        code('''from siu_lib.models import name_token_ids
from siu_lib.train import unlearn
print(profile.unlearn)
print("vocabulary mask ids:", [processor.tokenizer.decode([i]) for i in name_token_ids(processor.tokenizer, concept.name)])
result = unlearn(copy.deepcopy(original), processor, target, "siu", train_config=profile.unlearn,
                 training_args=setting.run_options["training_args"])
display(pd.DataFrame(result.history).set_index("step"))
from siu_lib.plots import plot_loss_terms
fig = plot_loss_terms(result.history, f"SIU on {concept.name}")
save_figure(fig, FIGURES / "siu_loss_terms.png")'''),
        md("## Answers before and after\nGreedy answers on unseen (generality) images of the concept, and on its text facts."),
        code('''from siu_lib.generate import generate
paths = bench.generality_image_paths(concept.concept_id)[:4]
items = [(bench.load_image(p), q) for p in paths for q in (concept.prompts["open"][0], concept.prompts["yesno"][0])]
items += [(None, f.question) for f in concept.facts[:3]]
before = generate(original, processor, items, max_new_tokens=32, progress=False)
after = generate(result.model, processor, items, max_new_tokens=32, progress=False)
pd.DataFrame({"image": ["yes" if i is not None else "no" for i, _ in items],
              "question": [q for _, q in items], "original": before, "after SIU": after})'''),
        md("""
## Did the run learn its own records?

A generality EM below 100 has two possible causes: the run learned its records on the forget
image but the change did not carry over to other pictures of the concept, or it did not learn
them at all. `training_fit` asks the model each image record's own question on the forget
image: a target (a) record is *learned* when the answer gives its fake name and not the
concept's name, a (b) record when the answer does not say yes (`reveals` is the EM's test).
"""),
        code('''from siu_lib.diagnostics import training_fit
fit = pd.concat([training_fit(m, processor, result.records, concept.name).assign(model=label)
                 for label, m in (("original", original), ("after SIU", result.model))])
display(fit.groupby(["model", "target"], sort=False)[["reveals", "learned"]].mean().mul(100).round(1))
fit[fit.model == "after SIU"][["target", "question", "trained", "answer", "learned"]]'''),
        md("""
## SIU's targets on the embedded model

Mean over the profile's concepts × seeds, measured on generality images. Targets:
efficacy 100%; generality EM ≥ 95%; other concepts' recognition ≥ 95% of the original's; the
target's own text facts ≥ 90%; diversity within 10 points of the original model's.

The generality EM is the mean over two prompt sets, so the table also splits it: **open
prompts** ("who is this?"; forgotten when the answer does not name the concept) and **yes/no
prompts** ("is `<c>` in this image?"; forgotten when the answer neither starts with yes nor names
the person shown as the concept, as "No, this is `<c>`." does), each
beside the original model's value. Target (a)'s fake names work on the open prompts; only
target (b)'s two records ask a yes/no question, so the yes/no half moves only as far as the
model's yes/no answers come from the face it recognises. The embedded model's pre-training makes
a "no" name the person shown ("No, this is X."), which ties its yes/no answers to the same
identity as naming; when a "no" did not name the person shown (world revision 5), six SIU steps
left the yes/no half where it was.

An open answer that does not name the concept is not necessarily the fake name: the table's last
three rows sort the open answers on generality images by what they name instead
(`siu_lib.diagnostics.open_answer_kinds`): **the run's fake name** (what target (a) teaches),
**someone else** (another concept, or another person of the fake-name pool), or **nobody** (a
description, a refusal, or garbled text). The EM counts all three as forgotten and the diversity
metric (unique words per answer) does not tell them apart, so this is where "never gibberish"
is checked. The fake names are people the embedded model has read about but never seen (world
revision 7, `World.fake_name_facts`), as "Jacob Campbell" is a name LLaVA's language model
knows: with the output layer frozen under LoRA, a fake-name token that was never an answer in
pre-training cannot be learned in six steps.
"""),
        code('''from siu_lib.analysis import siu_target_runs, siu_targets
from siu_lib.diagnostics import yesno_answer_kinds
from siu_lib.runs import RunSpec, load_run
eval_cfg = setting.eval_config(20)
target_ids = setting.concept_ids(profile.unlearn_concepts)
rows, originals = siu_target_runs(MODEL, original, processor, bench, fake_names, profile.unlearn, eval_cfg,
                                  target_ids, profile.seeds, profile.name, **setting.run_options)
targets = siu_targets(rows, originals)
display(rows[["concept", "seed", "efficacy", "generality_em", "generality_em_open", "generality_em_yesno",
              "open_names_fake", "open_names_nobody", "spec_recognition", "factual_retention",
              "diversity"]])
targets'''),
        code('''rows[["train_seconds", "eval_seconds"]].describe().loc[["mean", "min", "max"]].round(1)  # per run''',
             ignore="wall time on this machine"),
        md("""
## The sweep behind the embedded defaults, and the trade-off it shows

The paper's LoRA rank 128 and lr 3e-4 are sized for a 7B model. The embedded profile's values
were chosen on a grid run on the same protocol as the targets above (the profile's concepts ×
seeds, generality images; the whole grid is in `siu_lib.profiles.EMBEDDED_TRAIN`'s
documentation). `make sweep` (`scripts/siu_sweep.py`, about 12 minutes, outside the chain to keep
it within its time budget) reruns the part of it that brackets the choice, LoRA ranks 16, 64 and
the paper's 128 over learning rates around where each starts to cost the other concepts'
recognition, and a tenfold projector lr, and applies the rule of
`siu_lib.analysis.choose_setting`: **the largest generality EM among the settings that keep the
other concepts' recognition ≥ 95% of the original's, the own text facts ≥ 90% and the diversity
within 10 points**. Four settings leave the recipe to show where the trade-off comes from (six
target-(b) records, twelve steps, and full fine-tuning at two learning rates). It writes
`siu_sweep.csv` and `figures/siu_tradeoff.png`; notebook 09 draws every method's frontier on
the same plane.
"""),
        md("""
### Against a model that never saw these concepts

The gold standard of unlearning is *exact* unlearning: retrain without the forget set. For the
embedded model that is affordable, so we build it: the same model, world, seed and step count,
pre-trained with the concepts above **withheld** from every picture (no image of them, alone,
in a group photo or their forget image; `PretrainConfig.withheld`). Their text facts stay, and
yes/no questions about them are still asked on other people's pictures ("No, this is X."), so
this model knows of them, as SIU's targets (c) and (d) intend, but has never seen them.

It is evaluated exactly like an unlearned model (`siu_lib.analysis.never_seen_runs`), and
its column beside SIU's says how far each target can be reached by forgetting at all: a target
that the never-seen model misses is a property of the embedded model (for instance, how often it
answers yes to a face it does not know), not something six steps of any method could fix.
The targets table with this column is written to `siu_targets.csv`, the reference's rows to
`never_seen.csv`. A real model cannot be pre-trained again without the concepts, so under a
paper-scale profile (`llava-7b`) the targets table is written without this column.
"""),
        code('''from dataclasses import replace
from siu_lib.analysis import never_seen_runs
from siu_lib.results import atomic_write_csv
if setting.synthetic:
    from siu_lib.embedded import ensure_pretrained
    from siu_lib.models import load_model
    reference_checkpoint = ensure_pretrained(profile.world, profile.models[MODEL],
                                             replace(profile.pretrain[MODEL], withheld=tuple(target_ids)))
    reference, reference_processor = load_model(reference_checkpoint)
    never_seen = never_seen_runs(MODEL, original, processor, reference, reference_processor, bench, eval_cfg,
                                 target_ids, fake_names=fake_names)
    targets = siu_targets(rows, originals, never_seen)
    atomic_write_csv(RESULTS / "never_seen.csv", never_seen.assign(checkpoint=reference_checkpoint.name))
    display(never_seen[["concept", "efficacy", "generality_em", "generality_em_open", "generality_em_yesno",
                        "spec_recognition", "factual_retention", "diversity"]])
else:
    print(f"{profile.name}: no never-seen reference (it needs a synthetic world to pre-train on)")
atomic_write_csv(RESULTS / "siu_targets.csv", targets)
targets'''),
        md("""
### How the yes/no answers fail

Each run's answers to the yes/no prompts on generality images, read back from its JSON and
sorted into five kinds (`siu_lib.diagnostics.yesno_answer_kinds`, % of the run's yes/no
answers): **no** (the concept is forgotten; this column is the yes/no half of the generality
EM above), **no naming the concept** ("No, this is `<c>`.": the "no" names the person shown as
the concept, so it reveals it), **yes naming the concept**, **yes naming someone else** (a word of another concept's
name or of a fake name: the answer's "yes" contradicts the identity it names), and **yes naming nobody**
("Yes.", garbled text). A run whose column "no" is 0 or 100 gave the same first word, yes or
no, on every picture of the concept.
"""),
        code('''names = [c.name for c in bench.concepts] + list(fake_names)
# every targets run's generations, read back once from its JSON (also used by the next section)
generations = {(r.concept, r.seed): load_run(profile.name, RunSpec(MODEL, r.concept, "siu", r.seed, r.steps),
                                             profile.unlearn, eval_cfg)["evaluation"]["generations"]
               for r in rows.itertuples()}
yesno_kinds = pd.DataFrame([
    {"concept": c, "seed": seed, **yesno_answer_kinds(gens, bench.concept(c).name, names)}
    for (c, seed), gens in generations.items()])
print(f"of {len(yesno_kinds)} runs, every yes/no answer was 'no' in {(yesno_kinds.no == 100).sum()}, "
      f"'yes' in {(yesno_kinds.no == 0).sum()}; mixed in {((yesno_kinds.no > 0) & (yesno_kinds.no < 100)).sum()}")
yesno_kinds.round(1)'''),
        md("""
### Does forgetting follow the picture or the question?

The evaluation asks every prompt on the forget image and again, in turn, on the generality
images, so each question is asked on several pictures of the concept
(`siu_lib.diagnostics.question_consistency`). `same_verdict` is the share of questions that get
one verdict (revealed or forgotten) on every picture they are asked on;
`same_verdict_if_independent` is what that share would be if answers revealed the concept at
the run's own rates (one for the forget image, one for the generality images) whatever their
question. Well above it, the *question* decides: the run taught an answer to some phrasings and
not to others, on every picture alike, and the EM is set by how many questions were forgotten.
Below it, the *picture* decides (some pictures forgotten whatever the question). The open
prompts the evaluation asks are descriptive ("Who is the person with white hair?") and none of
them is among target (a)'s training questions; the yes/no prompts share most of their phrasings
with target (b)'s pool, but a run trains only two of them (its two (b) records), so most of the
ten are phrasings it was not trained on (and none is a phrasing of pre-training's yes/no
questions).
"""),
        code('''from siu_lib.diagnostics import question_consistency
consistency = pd.DataFrame([
    {"concept": c, "seed": seed, "prompts": kind, **question_consistency(gens, bench.concept(c).name, kind)}
    for (c, seed), gens in generations.items() for kind in ("open", "yesno")])
consistency.drop(columns=["concept", "seed"]).groupby("prompts").mean().round(1)'''),
    ],
    "04_run_baselines.ipynb": [
        md("""
# 04 · SIU and the baselines on the embedded models

Every method gets the same data budget, the concept's **one forget image**, and the same
trainer (`siu_lib.train.UnlearningTrainer`); only the records and the loss differ
(`siu_lib.methods`): **PO** (CE on refusals), **GA** (−CE on the original model's own
recognising answers), **GA+KL** (with the image passed to both models, unlike the authors'
code), and beyond the paper **NPO** (β = 0.1) and **GD** (GA on forget + CE on retain), against
**SIU**. Each run is evaluated on every metric of `03-metrics-attacks.md`
(`siu_lib.evaluate`) and written as JSON with its config, seed, versions and commit.

This notebook produces the raw rows; `05_evaluate` aggregates and plots them.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.setting import open_setting
from siu_lib.runs import RunSpec, run_one, original_report, original_row
from siu_lib.results import atomic_write_csv
from siu_lib.tables import FIG4_METHODS, TABLE1_METHODS, TABLE2_METHODS, table1_jobs
from siu_lib.progress import progress_bar
setting = open_setting(profile)
bench, fake_names, MODEL, options = setting.bench, setting.fake_names, setting.main_model, setting.run_options
eval_cfg = setting.eval_config(20)
concepts = setting.concept_ids(profile.table_concepts)
further = setting.concept_ids(profile.further_concepts, start=profile.table_concepts)
setting.check_images(concepts + further)
models = setting.models()
originals = {(size, cid): original_report(models[size][0], models[size][1], bench, cid, eval_cfg)
             for size in models for cid in concepts}
originals.update({(MODEL, cid): original_report(*models[MODEL], bench, cid, eval_cfg) for cid in further})
print("Table 1 concepts:", concepts, "| Fig 4 concepts:", further, "| seeds:", list(profile.seeds))'''),
        md("## Table 1 runs: every method × model size × concept × seed, 6 steps"),
        code('''rows = [original_row(size, rep, bench, fake_names) for (size, cid), rep in originals.items()]
for size, cid, m, seed in progress_bar(table1_jobs(models, concepts, profile.seeds), desc="Table 1 runs"):
    model, processor = models[size]
    rows.append(run_one(RunSpec(size, cid, m, seed, 6), model, processor, bench, fake_names,
                        profile.unlearn, eval_cfg, originals[(size, cid)], profile.name, **options))
table1_runs = pd.DataFrame(rows)
atomic_write_csv(RESULTS / "table1_runs.csv", table1_runs)
table1_runs.groupby(["model", "method"], sort=False)[["efficacy", "generality_em", "specificity"]].mean()'''),
        code('''table1_runs.groupby(["model", "method"], sort=False)[["train_seconds", "eval_seconds"]].mean().round(1)''',
             ignore="wall time on this machine"),
        md("## Step curves: every method at 6 … 35 steps (the paper's Figs 2–3)\nThe `tiny` model (a paper-scale profile's own), the first `step_concepts` concepts, seed 0; one row per run in `steps.csv`."),
        code('''model, processor = models[MODEL]
step_rows = []
for cid in concepts[:profile.step_concepts]:
    step_rows.append({**original_row(MODEL, originals[(MODEL, cid)], bench, fake_names), "steps": 0})
    for n in progress_bar(profile.step_grid, desc=f"step curves {cid}"):
        for m in TABLE1_METHODS:
            step_rows.append(run_one(RunSpec(MODEL, cid, m, 0, n), model, processor, bench, fake_names,
                                     profile.unlearn, eval_cfg, originals[(MODEL, cid)], profile.name, **options))
steps = pd.DataFrame(step_rows)
atomic_write_csv(RESULTS / "steps.csv", steps)
steps.groupby(["method", "steps"], sort=False)[["efficacy", "generality_em", "specificity", "fluency", "diversity"]].mean()'''),
        md("""
## Table 2 runs: the ablations of SIU

On `tiny`, Table 1's concepts and seeds at 6 steps: SIU without the token mask K_S, without the
vocabulary mask K_V, with a plain KL (neither mask), and SIU with each of its four targets
removed (registered methods of `siu_lib.methods`). SIU's own rows are Table 1's.
"""),
        code('''ablations = [m for m in TABLE2_METHODS if m != "siu"]
table2_rows = [r for r in rows if r["model"] == MODEL and r["method"] == "siu"]
for cid, m, seed in progress_bar([(c, m, s) for c in concepts for m in ablations for s in profile.seeds],
                                 desc="Table 2 runs"):
    table2_rows.append(run_one(RunSpec(MODEL, cid, m, seed, 6), model, processor, bench, fake_names,
                               profile.unlearn, eval_cfg, originals[(MODEL, cid)], profile.name, **options))
table2_runs = pd.DataFrame(table2_rows)
atomic_write_csv(RESULTS / "table2_runs.csv", table2_runs)
table2_runs.groupby("method", sort=False)[["efficacy", "generality_em", "specificity"]].mean()'''),
        md("""
## Fig 4 runs: further concepts

The paper's Fig 4 shows EM on 8 concepts not used in Table 1, for SIU, GA+KL, PO and GA. Here:
the `further_concepts` concepts after Table 1's, on `tiny`, every seed, 6 steps.
"""),
        code('''fig4_rows = [original_row(MODEL, originals[(MODEL, cid)], bench, fake_names) for cid in further]
for cid, m, seed in progress_bar([(c, m, s) for c in further for m in FIG4_METHODS for s in profile.seeds],
                                 desc="Fig 4 runs"):
    fig4_rows.append(run_one(RunSpec(MODEL, cid, m, seed, 6), model, processor, bench, fake_names,
                             profile.unlearn, eval_cfg, originals[(MODEL, cid)], profile.name, **options))
fig4_runs = pd.DataFrame(fig4_rows)
atomic_write_csv(RESULTS / "fig4_runs.csv", fig4_runs)
fig4_runs.pivot_table(index="concept", columns="method", values="generality_em", sort=False).round(1)'''),
    ],
    "05_evaluate.ipynb": [
        md("""
# 05 · Tables 1, 2 and 7, the step curves and Fig 4

Aggregates the runs of `04_run_baselines` (read from `data/results/<profile>/`, no model is
run here): **Table 1** (every metric, mean ± std over every run, the std over concepts beside
it, the specificity ratio to the original; the original model as the first row), **Table 7**
(specificity per utility task), **Table 2** (SIU's ablations), **Figs 2–3** (every metric
against the number of steps, a band over concepts) and **Fig 4** (EM per further concept). The
last section compares our numbers with the paper's claims, and says so plainly where they
disagree.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.metrics import TABLE1_METRICS
from siu_lib.tables import TABLE2_METHODS, concept_std, mean_std_table, order_methods, plus_minus
from siu_lib.results import atomic_write_csv
runs = order_methods(pd.read_csv(RESULTS / "table1_runs.csv"))
columns = [*TABLE1_METRICS, "specificity_ratio"]
table1 = mean_std_table(runs, ["model", "method"], columns).merge(
    concept_std(runs, ["model", "method"], columns), on=["model", "method"])
atomic_write_csv(RESULTS / "table1.csv", table1)
print(f"{runs.concept.nunique()} concepts x {runs.seed.nunique()} seeds per method; ± is the std over every run")
plus_minus(table1, columns, digits=2)'''),
        md("The std over concepts (each concept's mean over seeds), beside the std over every run above:"),
        code('''table1.set_index(["model", "method"])[[f"{m}_concept_std" for m in columns]].round(2)'''),
        md("## Table 7: specificity per utility task\nAccuracy (%) on what was not targeted: other concepts' recognition, general visual QA, other concepts' text facts."),
        code('''spec_cols = [c for c in runs.columns if c.startswith("spec_")]
table7 = mean_std_table(runs, ["model", "method"], spec_cols)
atomic_write_csv(RESULTS / "table7.csv", table7)
plus_minus(table7, spec_cols)'''),
        md("## Table 2: SIU's ablations\nOn `tiny`, same protocol as Table 1: the DMK ablation (no token mask, no vocabulary mask, plain KL) and each of the four targets removed."),
        code('''table2_runs = pd.read_csv(RESULTS / "table2_runs.csv")
table2 = mean_std_table(order_methods(table2_runs, TABLE2_METHODS), ["model", "method"], columns)
atomic_write_csv(RESULTS / "table2.csv", table2)
plus_minus(table2, columns, digits=2)'''),
        md("## Figs 2–3: metrics against fine-tuning steps"),
        code('''from siu_lib.plots import plot_step_curves
steps = pd.read_csv(RESULTS / "steps.csv")
MODEL = steps.model.iloc[0]  # the model of the single-model protocols: tiny, or a paper-scale profile's
fig = plot_step_curves(steps[steps.method != "original"], model=MODEL)
save_figure(fig, FIGURES / "fig2_3_steps.png")'''),
        md("## Fig 4: EM per further concept\nGenerality EM on the concepts after Table 1's, one bar per method, error bars the std over seeds."),
        code('''from siu_lib.plots import plot_em_per_concept
from siu_lib.tables import FIG4_METHODS
fig4_runs = pd.read_csv(RESULTS / "fig4_runs.csv")
fig = plot_em_per_concept(fig4_runs[fig4_runs.method.isin(FIG4_METHODS)], FIG4_METHODS)
save_figure(fig, FIGURES / "fig4_em_per_concept.png")'''),
        md("## Our numbers against the paper's claims\nEach line is computed from the tables above; nothing here is typed by hand."),
        code('''def at6(model):
    t = table1[table1.model == model].set_index("method")
    return t.drop(index="original")
claims = []
for model in table1.model.unique():
    t = at6(model)
    base = t.drop(index="siu")
    claims += [
        (model, "SIU >= every baseline on generality EM", bool((t.loc["siu", "generality_em"] >= base["generality_em"]).all())),
        (model, "SIU > every baseline on specificity", bool((t.loc["siu", "specificity"] > base["specificity"]).all())),
        (model, "SIU more fluent (lower perplexity) than every baseline", bool((t.loc["siu", "fluency"] < base["fluency"]).all())),
        (model, "SIU > every baseline on diversity", bool((t.loc["siu", "diversity"] > base["diversity"]).all())),
    ]
s = steps[steps.method.isin(["ga", "ga_kl"])].groupby(["method", "steps"]).mean(numeric_only=True)
for m in ("ga", "ga_kl"):
    first, last = s.loc[m].iloc[0], s.loc[m].iloc[-1]
    claims.append((MODEL, f"{m}: diversity falls as steps grow", bool(last["diversity"] < first["diversity"])))
    claims.append((MODEL, f"{m}: perplexity rises as steps grow", bool(last["fluency"] > first["fluency"])))
t2 = table2.set_index("method")
for ablation in TABLE2_METHODS[1:]:
    claims.append((MODEL, f"removing it hurts SIU ({ablation}: lower generality EM or specificity)",
                   bool(t2.loc[ablation, "generality_em"] < t2.loc["siu", "generality_em"]
                        or t2.loc[ablation, "specificity"] < t2.loc["siu", "specificity"])))
f4 = fig4_runs.pivot_table(index="concept", columns="method", values="generality_em", sort=False)
best = int((f4["siu"] >= f4[[m for m in FIG4_METHODS if m != "siu"]].max(axis=1)).sum())
claims.append((MODEL, f"Fig 4: SIU has the highest EM on every further concept ({best} of {len(f4)})",
               best == len(f4)))
claims = pd.DataFrame(claims, columns=["model", "claim", "holds here"])
claims'''),
        code('''from siu_lib.tables import verdict_text
print(verdict_text(claims))'''),
    ],

    "06_attacks.ipynb": [
        md("""
# 06 · Attacks: membership inference and jailbreaks (the paper's Table 4)

The paper claims SIU "can avoid invasive membership inference attacks and jailbreak attacks".
This notebook attacks every method's unlearned models (the original model and, on `tiny`, the
reference pre-trained without the concepts' pictures, for comparison), with the same code that
attacks LLaVA-1.5 (`siu_lib.attacks`; every attack is a registered evaluation, lower = less leaks).
Protocol: both model sizes, the first five concepts, seed 0, 6 steps (one seed, so that the whole
chain fits its time budget; Table 1's seed spread is in notebook 05).

* **Membership inference, the paper's protocol** (`mia_rouge`): the MIA prompts ("Tell me about
  the life of the person in the picture.") with generality images; the prompts whose Min-K% Prob
  (k = 40%) the unlearned and the original model rate alike (ratio within 1.15) are answered by
  both; the score is the mean ROUGE-L recall of the unlearned model's answers against the
  original's, over pairs above 0.1 (`rouge-score`). `mia_kept` counts the kept pairs.
* **Membership inference, the standard form** (beyond the paper, `mia_auc_<score>`): items are an
  MIA prompt with a picture, answered with the identity's name or a fact. Members are the forget
  concept's items; non-members the same items about identities the world draws by the same
  recipe but never shows or names. Scores LOSS, zlib, Min-K% and Min-K%++; ROC-AUC by
  scikit-learn. The never-seen reference is the gold standard: a model that truly forgot should
  score like it, not at 0.5 (it still knows the concept's name and facts from text).
* **Jailbreaks**: the recognition prompts in the world's second language (`multilingual_leak`);
  a fact only the concept has, asked through "the person in the picture" (`multihop_asr`, the
  rule judge, or the LLM judge when `SIU_JUDGE_URL` configures one); recognition paraphrases no
  training data contains (`paraphrase_leak`).
* **Visual perturbations** (beyond the paper, `leak_<kind>`): the generality prompts on cropped,
  grayscale, noisy, mirrored and down-scaled generality images, and on group photos of the
  target beside a second person; `leak_none` is the same prompts on the images as they are.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from dataclasses import replace
from siu_lib.setting import open_setting
from siu_lib.attacks import ATTACKS, MIA_SCORES, AttackConfig, available_attacks, roc_points
from siu_lib.runs import RunSpec, attack_one
from siu_lib.results import atomic_write_csv
from siu_lib.tables import TABLE1_METHODS, TABLE4_ORDER, plus_minus, table4
from siu_lib.progress import progress_bar
setting = open_setting(profile)
bench, fake_names, MODEL, options = setting.bench, setting.fake_names, setting.main_model, setting.run_options
eval_cfg = setting.eval_config(20)
attack_cfg = AttackConfig()
concepts = setting.concept_ids(profile.unlearn_concepts)
setting.check_images(concepts)
nonmembers = setting.nonmembers(8, attack_cfg.nonmember_images)  # none for a real model: no AUC form
attacks = [a for a in ATTACKS if a in available_attacks(bench, concepts[0], nonmembers)]
models = setting.models()
reference = None  # the never-seen reference: only a synthetic world can pre-train one
if setting.synthetic:
    from siu_lib.embedded import ensure_pretrained
    from siu_lib.models import load_model
    reference_checkpoint = ensure_pretrained(profile.world, profile.models[MODEL],
                                             replace(profile.pretrain[MODEL], withheld=tuple(concepts)))
    reference, _ = load_model(reference_checkpoint)
print(attack_cfg)
seeds = profile.seeds[:1]
print("concepts", concepts, "seeds", list(seeds), "| non-members:", [m.name for m in nonmembers])'''),
        md("## Every method's models, attacked\nOne run per model size × concept × method (seed 0; the original and the never-seen reference once per concept); each run's JSON, with every answer and membership score, goes to `runs/attacks/`."),
        code('''jobs = []
for size in models:
    for cid in concepts:
        jobs.append((size, cid, "original", 0, 0))
        if reference is not None and size == MODEL:
            jobs.append((size, cid, "never_seen", 0, 0))
        jobs += [(size, cid, m, seed, 6) for m in TABLE1_METHODS for seed in seeds]
rows, curves = [], []
for size, cid, method, seed, steps in progress_bar(jobs, desc="attack runs"):
    model, processor = models[size]
    row, report = attack_one(RunSpec(size, cid, method, seed, steps), model, processor, bench, fake_names,
                             profile.unlearn, eval_cfg, attack_cfg, nonmembers, profile.name,
                             model=reference if method == "never_seen" else None, **options)
    rows.append(row)
    for score in [s for s in MIA_SCORES if f"mia_auc_{s}" in report.metrics]:
        result = report.metrics[f"mia_auc_{score}"]
        fpr, tpr = roc_points(result.details["labels"], result.per_example)
        curves += [{"model": size, "method": method, "score": score, "fpr": f, "tpr": t} for f, t in zip(fpr, tpr)]
runs = pd.DataFrame(rows)
atomic_write_csv(RESULTS / "table4_runs.csv", runs)
runs.groupby(["model", "method"], sort=False)[["train_seconds", "attack_seconds"]].mean().round(1)''',
             ignore="wall time on this machine"),
        md("## Table 4\nMean ± std over runs (concepts, seed 0). Lower is better in every column; the never-seen row is what forgetting can reach."),
        code('''table = table4(runs, attacks)
atomic_write_csv(RESULTS / "table4.csv", table)
assert not table[attacks].isna().any().any(), "an attack gave no value"
with pd.option_context("display.max_columns", None, "display.width", 250):
    fractions = [c for c in attacks if c.startswith("mia_")]  # ROUGE-L and AUCs; the rest are %
    display(plus_minus(table, fractions, digits=3).join(plus_minus(table, [c for c in attacks if c not in fractions])))
    display(table[["model", "method", "runs", "mia_kept", "mia_counted"]])'''),
        md("## Membership inference as ROC curves\nThe mean curve over each method's runs (the Min-K%++ score); `table4_roc.csv` has every score. Only where there are non-members (a synthetic world's held-out identities)."),
        code('''from siu_lib.plots import plot_roc, plot_perturbation_leaks
if curves:
    roc = (pd.DataFrame(curves).groupby(["model", "method", "score", "fpr"], sort=False)["tpr"].mean().reset_index())
    atomic_write_csv(RESULTS / "table4_roc.csv", roc)
    fig = plot_roc(roc, "min_k_pp")
    save_figure(fig, FIGURES / "table4_roc.png")
else:
    print(f"{profile.name}: no non-members, so no ROC curve")'''),
        md("## Leak rate per jailbreak and perturbation"),
        code('''leaks = ["leak_none", "leak_crop", "leak_grayscale", "leak_noise", "leak_flip", "leak_resize", "leak_group",
         "paraphrase_leak", "multilingual_leak", "multihop_asr"]
labels = ["as is", "crop", "grayscale", "noise", "flip", "resize", "beside\\nanother", "paraphrase",
          "second\\nlanguage", "multi-hop"]
shown = [(leak, label) for leak, label in zip(leaks, labels) if leak in attacks]
fig = plot_perturbation_leaks(table, [leak for leak, _ in shown], [label for _, label in shown])
save_figure(fig, FIGURES / "table4_perturbations.png")'''),
        md("## Our numbers against the paper's claims\nT4-mia: SIU's outputs are the least similar to the original's (lowest MIA ROUGE-L). T4-jb: SIU resists the multilingual and multi-hop jailbreaks (lowest leak and success rates). Computed from the table above; nothing typed by hand."),
        code('''claims = []
for model in table.model.unique():
    t = table[table.model == model].set_index("method")
    base = t.loc[[m for m in TABLE1_METHODS if m != "siu"]]
    claims += [(model, "SIU has the lowest MIA ROUGE-L of the methods", bool((t.loc["siu", "mia_rouge"] < base["mia_rouge"]).all())),
               (model, "SIU has the lowest multilingual leak of the methods", bool((t.loc["siu", "multilingual_leak"] < base["multilingual_leak"]).all())),
               (model, "SIU has the lowest multi-hop success of the methods", bool((t.loc["siu", "multihop_asr"] < base["multihop_asr"]).all()))]
    if "never_seen" in t.index:
        gap = abs(t.loc["siu", "mia_auc_min_k_pp"] - t.loc["never_seen", "mia_auc_min_k_pp"])
        claims.append((model, f"(beyond the paper) SIU's MIA AUC (Min-K%++) within 0.05 of the never-seen "
                              f"reference's (gap {gap:.3f})", bool(gap <= 0.05)))
claims = pd.DataFrame(claims, columns=["model", "claim", "holds here"])
claims'''),
        code('''from siu_lib.tables import verdict_text
print(verdict_text(claims))'''),
    ],
    "07_cases.ipynb": [
        md("""
# 07 · Cases: the butterfly effect and every method's answers

**The butterfly effect.** The paper reports that after unlearning a concept A, its partner B in
a group photo with A is also misnamed, while B alone is still named (a "positive butterfly
effect"). For every method (seed 0, 6 steps) and every (A, B) pair of the world's group
photos, A is unlearned; the original and the unlearned model are asked who is in each group
photo of A and B, and who is in B's own generality images (`siu_lib.cases`).

**Cases.** Every method's answers on the same generality images and prompts, read back from the
Table 1 runs of notebook 04 (no model is trained here for them).

*Needs the synthetic world* (the group photos of its identities): the chain skips this notebook under a paper-scale profile (`llava-7b`, `llava-13b`), and run by hand there it stops at its first step.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.scale import require_synthetic
require_synthetic(profile, "notebook 07")'''),
        code('''from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.world import World
from siu_lib.embedded import ensure_pretrained
from siu_lib.models import load_model
from siu_lib.results import atomic_write_csv
from siu_lib.cases import butterfly_runs, butterfly_table, group_pairs
from siu_lib.tables import TABLE1_METHODS
world = World(profile.world)
bench = load_benchmark(ensure_synthetic(profile.world))
model, processor = load_model(ensure_pretrained(profile.world, profile.models["tiny"], profile.pretrain["tiny"]))
pairs = group_pairs(bench)
print(len(pairs), "pairs:", pairs[:4], "...")'''),
        md("## The butterfly effect\nOne row per method and pair in `butterfly_runs.csv`; below, the mean over pairs (% of answers that name each person)."),
        code('''from dataclasses import replace
bf_rows, bf_answers = butterfly_runs(model, processor, bench, world.fake_names, TABLE1_METHODS,
                                     replace(profile.unlearn, steps=6, seed=0), pairs)
atomic_write_csv(RESULTS / "butterfly_runs.csv", bf_rows)
butterfly = butterfly_table(bf_rows)
atomic_write_csv(RESULTS / "butterfly.csv", butterfly)
butterfly.round(1)'''),
        code('''from siu_lib.plots import plot_butterfly_case
a, b = pairs[0]
answers = pd.DataFrame([r for r in bf_answers if (r["a"], r["b"]) == (a, b)])
group_image = bench.load_image(answers[answers.kind == "group"].image.iloc[0])
alone_image = bench.load_image(answers[answers.kind == "alone"].image.iloc[0])
fig = plot_butterfly_case(group_image, alone_image, answers, (bench.concept(a).name, bench.concept(b).name))
save_figure(fig, FIGURES / "butterfly_case.png")'''),
        md("The paper's claim (BF), from the table above: after unlearning A, B is named less often in the group photo, and about as often alone (within 10 points of the original)."),
        code('''t = butterfly.set_index("method")
claims = pd.DataFrame([(m, bool(t.loc[m, "b_named_in_group"] < t.loc["original", "b_named_in_group"]),
                        bool(abs(t.loc[m, "b_named_alone"] - t.loc["original", "b_named_alone"]) <= 10.0))
                       for m in TABLE1_METHODS],
                      columns=["method", "B misnamed more in the group photo", "B alone still named"])
claims'''),
        md("## Cases: every method on the same images and prompts\nTable 1's runs of the first concept at seed 0 (notebook 04), and the original model's answers to the same prompts."),
        code('''from siu_lib.cases import case_generations
from siu_lib.evaluate import EvalConfig
from siu_lib.generate import generate
from siu_lib.plots import plot_cases
from siu_lib.runs import RunSpec
table1_runs = pd.read_csv(RESULTS / "table1_runs.csv")
cid = table1_runs.concept.iloc[0]
eval_cfg = EvalConfig(n_generality_images=min(20, profile.eval_images))
cases = case_generations(profile.name, lambda m: RunSpec("tiny", cid, m, 0, 6), TABLE1_METHODS,
                         profile.unlearn, eval_cfg)
images = [bench.load_image(p) for p in cases.image]
cases.insert(2, "original", generate(model, processor, list(zip(images, cases.question)), max_new_tokens=32,
                                     progress=False))
atomic_write_csv(RESULTS / "cases.csv", cases)
fig = plot_cases(images, list(cases.question), {m: list(cases[m]) for m in ["original", *TABLE1_METHODS]},
                 f"{bench.concept(cid).name}: the same images and prompts, every method's answer")
save_figure(fig, FIGURES / "cases.png")'''),
    ],
    "08_multi_concept.ipynb": [
        md("""
# 08 · Multi-concept unlearning (the paper's Table 3)

All the concepts unlearned at once: each method's records for every concept merged (each keeping
its own fake name and token mask; the vocabulary mask the union of the names), with as many
passes over the merged data as a single-concept run gives its own (`k` × 6 steps for `k`
concepts). Beyond the paper, the same concepts as requests one after another, each unlearned
with 6 steps from the model the previous request left. The curve runs over 1, 5, 10 and 20
concepts on `tiny` (a paper-scale profile's own model), seed 0, each forgotten concept measured
on 10 of its generality images (`siu_lib.multi`). Each run trains a copy of the model: at paper
scale that is a second set of weights on the GPU.

With every concept forgotten, no other concept is left to recognise: specificity is then the
general visual QA and the concepts' text facts (no forgotten concept is asked to be recognised
or verified). The paper reports SIU's specificity falling to 24.9% with all 20 concepts.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.setting import open_setting
from siu_lib.results import atomic_write_csv
from siu_lib.multi import TABLE3_METRICS, multi_concept_runs
from siu_lib.tables import TABLE1_METHODS
setting = open_setting(profile)
bench, fake_names, MODEL = setting.bench, setting.fake_names, setting.main_model
setting.check_images(setting.concept_ids(max(profile.multi_counts)))
model, processor = setting.model(MODEL)
# 10 generality images per forgotten concept (200 answers of each prompt set at 20 concepts)
eval_cfg = setting.eval_config(10)
print("concepts forgotten:", list(profile.multi_counts))'''),
        code('''multi = multi_concept_runs(MODEL, model, processor, bench, fake_names, TABLE1_METHODS, profile.unlearn,
                           eval_cfg, profile.multi_counts, training_args=setting.run_options["training_args"])
atomic_write_csv(RESULTS / "multi_concept_runs.csv", multi)
multi[["method", "concepts", "mode", "steps", "records", "train_seconds"]]''', ignore="wall time on this machine"),
        md("## Table 3: every concept of the profile unlearned at once\nThe mean over the forgotten concepts; the specificity ratio is to the original model on the same items."),
        code('''k = max(profile.multi_counts)
table3 = multi[(multi.concepts == k) & multi["mode"].isin(["-", "at_once"])].reset_index(drop=True)
atomic_write_csv(RESULTS / "table3.csv", table3)
print(f"{k} concepts at once, {int(table3.steps.max())} steps; SIU's specificity here "
      f"{table3.set_index('method').loc['siu', 'specificity']:.1f}% (the paper: 24.9%)")
table3.set_index("method")[[*TABLE3_METRICS, "spec_general_vqa", "spec_facts"]].round(2)'''),
        md("## The curve: 1 … 20 concepts, at once and one after another"),
        code('''from siu_lib.plots import plot_multi_concept
fig = plot_multi_concept(multi)
save_figure(fig, FIGURES / "table3_curve.png")'''),
        md("## Our numbers against the paper's claim (T3)\nWith all concepts unlearned at once, SIU stays better than the baselines (generality EM and specificity), and its specificity drops from the single-concept run."),
        code('''t = table3.set_index("method")
base = t.loc[[m for m in TABLE1_METHODS if m != "siu"]]
single = multi[(multi.concepts == min(profile.multi_counts)) & (multi["mode"] == "at_once")].set_index("method")
claims = pd.DataFrame([
    ("SIU >= every baseline on generality EM", bool((t.loc["siu", "generality_em"] >= base["generality_em"]).all())),
    ("SIU >= every baseline on specificity", bool((t.loc["siu", "specificity"] >= base["specificity"]).all())),
    ("SIU's specificity drops from one concept to all", bool(t.loc["siu", "specificity"] < single.loc["siu", "specificity"])),
], columns=["claim", "holds here"]).assign(model=MODEL)[["model", "claim", "holds here"]]
claims'''),
        code('''from siu_lib.tables import verdict_text
print(verdict_text(claims))'''),
    ],
    "09_frontiers.ipynb": [
        md("""
# 09 · Each method's frontier (beyond the paper)

Table 1 compares the methods at one fixed setting each, so a method may look better only
because its setting leans toward forgetting or toward keeping. Here every method runs on SIU's
targets protocol (the first concepts, seed 0, 20 generality images, as notebook 03) at three
learning rates (the embedded default's × 0.5, 1, 2), and each method's points trace its
trade-off between forgetting (generality EM) and keeping the other concepts (their recognition
over the original's). The never-seen reference (notebook 03) is the ideal point. The table
gives the best EM each method reaches while keeping the others' recognition ≥ 0.95.

*Needs the synthetic world* (the never-seen reference is its ideal point): the chain skips this notebook under a paper-scale profile (`llava-7b`, `llava-13b`), and run by hand there it stops at its first step.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.scale import require_synthetic
require_synthetic(profile, "notebook 09")'''),
        code('''from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.world import World
from siu_lib.embedded import ensure_pretrained
from siu_lib.models import load_model
from siu_lib.evaluate import EvalConfig
from siu_lib.results import atomic_write_csv
from siu_lib.analysis import (FRONTIER_LR_FACTORS, TARGET_FLOORS, best_at_ratio, frontier_runs,
                              frontier_table)
from siu_lib.tables import TABLE1_METHODS
world = World(profile.world)
bench = load_benchmark(ensure_synthetic(profile.world))
model, processor = load_model(ensure_pretrained(profile.world, profile.models["tiny"], profile.pretrain["tiny"]))
eval_cfg = EvalConfig(n_generality_images=min(20, profile.eval_images))
concepts = [c.concept_id for c in bench.concepts[:profile.unlearn_concepts]]
seeds = profile.seeds[:1]
print("lrs:", [profile.unlearn.lr * f for f in FRONTIER_LR_FACTORS], "| concepts", concepts, "| seeds", list(seeds))'''),
        code('''rows, originals = frontier_runs("tiny", model, processor, bench, world.fake_names, profile.unlearn,
                               TABLE1_METHODS, FRONTIER_LR_FACTORS, eval_cfg, concepts, seeds, profile.name)
atomic_write_csv(RESULTS / "frontier_runs.csv", rows)
frontiers = frontier_table(rows, originals)
atomic_write_csv(RESULTS / "frontiers.csv", frontiers)
frontiers.round(3)'''),
        md("## The best EM at others' recognition ≥ 0.95"),
        code('''best = best_at_ratio(frontiers, TARGET_FLOORS["recognition_ratio"])
atomic_write_csv(RESULTS / "frontier_best.csv", best)
best.round(3)'''),
        code('''from siu_lib.plots import plot_frontiers
never_seen = pd.read_csv(RESULTS / "never_seen.csv")
ideal = (never_seen.spec_recognition.mean() / never_seen.original_recognition.mean(), never_seen.generality_em.mean())
fig = plot_frontiers(frontiers, ideal, TARGET_FLOORS["recognition_ratio"])
save_figure(fig, FIGURES / "frontiers.png")'''),
    ],
    "10_paper_claims.ipynb": [
        md("""
# 10 · The paper's claims against our numbers

One row per claim of the paper that this package checks (`../shared/spec/05-paper-claims.md`):
the paper's number where one is known (most claims are words only; none is invented here),
ours, and a verdict computed from the saved tables (`siu_lib.claims`): **agree** when every
comparison goes the paper's way, **disagree** when none does, **partly** in between, **not
measured** when a table is missing. Written to `claims.csv`, shown in the README. A third party
(PEBench, arXiv 2503.12545) re-ran SIU on real models and got forgetting 100 but retention 10.4
(from 97.5): read T1-util beside it.
"""),
        code(PARAMETERS, ("parameters",)),
        code(SETUP),
        code('''from siu_lib.claims import CLAIM_TABLES, claims_table
from siu_lib.results import atomic_write_csv
# every table a claim reads; one a profile does not make (the butterfly effect needs group photos
# of a synthetic world) leaves its claim "not measured"
tables = {name: pd.read_csv(RESULTS / name) for name in CLAIM_TABLES if (RESULTS / name).is_file()}
claims = claims_table(tables)
atomic_write_csv(RESULTS / "claims.csv", claims)
with pd.option_context("display.max_colwidth", None):
    display(claims)'''),
        md("""
## Every table in the paper's layout

`siu_lib.report` renders Tables 1–4 and 7, the butterfly effect, each method's best frontier
point and the claims above as one Markdown file (`tables.md` in the figures folder), the paper's
known numbers in a `paper:` row beside ours. On the default profile the claims table also goes
into the README, between its markers.
"""),
        code('''from IPython.display import Markdown
from siu_lib.paths import REPO_ROOT
from siu_lib.report import update_readme, write_tables_markdown
tables_md = write_tables_markdown(RESULTS, FIGURES / "tables.md", profile.name)
if profile.name == "default":
    update_readme(REPO_ROOT / "README.md", claims)
Markdown(tables_md.read_text())'''),
    ],}


#: what each notebook reads and writes, for the chain's resume (``siu_lib.chain``): files of the
#: profile's results folder (``reads``, ``writes``) and of its figures folder (``figures``)
NOTEBOOK_IO = {
    "01_build_mmubench.ipynb": {"figures": ["contact_sheet.png"], "synthetic": True},
    "02_pretrain_embedded_mllm.ipynb": {"writes": ["pretrain.csv"], "figures": ["pretrain_loss.png"], "synthetic": True},
    "03_unlearn_siu.ipynb": {"writes": ["siu_targets.csv", "never_seen.csv"], "synthetic_files": ["never_seen.csv"],
                             "figures": ["fig1_pipeline.png", "siu_loss_terms.png"]},
    "04_run_baselines.ipynb": {"writes": ["table1_runs.csv", "steps.csv", "table2_runs.csv", "fig4_runs.csv"]},
    "05_evaluate.ipynb": {"reads": ["table1_runs.csv", "steps.csv", "table2_runs.csv", "fig4_runs.csv"],
                          "writes": ["table1.csv", "table7.csv", "table2.csv"],
                          "figures": ["fig2_3_steps.png", "fig4_em_per_concept.png"]},
    "06_attacks.ipynb": {"writes": ["table4_runs.csv", "table4.csv", "table4_roc.csv"],
                         "figures": ["table4_roc.png", "table4_perturbations.png"],
                         "synthetic_files": ["table4_roc.csv", "table4_roc.png"]},
    "07_cases.ipynb": {"reads": ["table1_runs.csv"], "writes": ["butterfly_runs.csv", "butterfly.csv", "cases.csv"],
                       "figures": ["butterfly_case.png", "cases.png"], "synthetic": True},
    "08_multi_concept.ipynb": {"writes": ["multi_concept_runs.csv", "table3.csv"], "figures": ["table3_curve.png"]},
    "09_frontiers.ipynb": {"reads": ["never_seen.csv"], "writes": ["frontier_runs.csv", "frontiers.csv", "frontier_best.csv"],
                           "figures": ["frontiers.png"], "synthetic": True},
    "10_paper_claims.ipynb": {"reads": ["table1.csv", "table2.csv", "steps.csv", "fig4_runs.csv", "table3.csv",
                                       "multi_concept_runs.csv", "table4.csv", "butterfly.csv", "table1_runs.csv",
                                       "table2_runs.csv", "table4_runs.csv", "table7.csv", "frontier_runs.csv",
                                       "frontier_best.csv"],
                              "writes": ["claims.csv"], "figures": ["tables.md"]},
}


def build() -> list[Path]:
    """Write every notebook; return their paths."""
    out = []
    for name, cells in NOTEBOOKS.items():
        for k, cell in enumerate(cells):  # stable ids: rebuilding an unchanged notebook is a no-op
            cell["id"] = f"{name.split('_')[0]}-{k:02d}"
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "siu": {**{key: NOTEBOOK_IO[name].get(key, []) for key in ("reads", "writes", "figures", "synthetic_files")},
                    "synthetic": NOTEBOOK_IO[name].get("synthetic", False)}})
        path = ROOT / "notebooks" / name
        nbformat.write(nb, path)
        out.append(path)
    return out


if __name__ == "__main__":
    for p in build():
        print("wrote", p.relative_to(ROOT))
