"""The synthetic cohort: realistic MS-DIAL alignment exports with assays that depend on known constituents.

We have no permissively licensed cohort of extracts with MS/MS *and* bioactivity, so the demo and the tests use
one built from real reference spectra (:mod:`ms2img.synth.library`, read with matchms). Each accession is a
mixture (:mod:`ms2img.synth.world`) of

* **phenolic families** made of PhenolicsDB standards (CC BY 4.0) and unannotated relatives of them;
* **a chemotype**: which constituent gives the base peak (a strongly ionising hydroxycinnamic acid, flavonol,
  flavan-3-ol, primary metabolite, triterpenoid, or a matrix lipid), so the intensity scale of the image (set by
  the most intense precursor) varies from accession to accession and is not tied to one compound family;
* **minor actives**: a few unannotated low-abundance constituents (mg/g of a tenth of the big families) with a
  strong effect on one or two assays, so an assay is not only a sum over big families;
* **background chemistry** unrelated to the assays (~1,500 unknowns from moved matchms/MassBank spectra),
  **matrix background ions** (fatty acids, oxylipins, lysophospholipids, salt clusters; PEG and phthalates in
  positive mode), in-source adducts, blank contaminants and, in the QC column, a pooled-looking mixture.

Accessions run in injection batches of 40 (:mod:`ms2img.synth.accession`): per batch an m/z calibration
offset of a few ppm, an RT shift, an intensity scale and drift, its own contaminants, all unrelated to activity.
Ion suppression lowers co-eluting features by the total load. Instrument effects: ppm and RT noise per replicate
and peak, detection limit, DDA misses (no MS/MS for weak precursors), dropped and noise fragments, the
unfragmented precursor with its M+1/M+2 isotope peaks above the precursor m/z (up to +2.1 Da), alignment splits.
The assays are functions of the latent chemistry plus noise (:func:`ms2img.synth.chemistry.assays_from_latent`).

Everything is deterministic from the seed: the world (compound pool) from ``SeedSequence([seed, 0])``,
accession ``i`` from ``SeedSequence([seed, 1, i])`` and its batch ``(i - 1) // 40`` from
``SeedSequence([seed, 2, batch])``, so ``make_cohort(n=200)`` followed by ``append`` of 50 writes byte-identical
files to ``make_cohort(n=250)``.

Files written under ``out_dir``:

* ``exports/ACC0001.txt`` ...: MS-DIAL v4 alignment export (:mod:`ms2img.io.msdial_writer`), replicate
  columns, a blank and a QC, CRLF line ends; the ``Batch ID`` row names the injection batch.
* ``assays.csv``: ``accession,DPPH,elastase,TFC,TPC`` (raw units).
* ``latent.csv``: the ground-truth chemistry per accession (family totals in mg/g, ``total_phenolics``,
  ``chemotype``, ``dominant_mgg``, ``minor_1`` ... mg/g of each minor active); never read by the pipeline.
* ``truth.csv``: the planted actives, one row per (assay, compound) that drives the assay, heaviest first:
  ``assay, compound, precursor_mz, rt_min, weight, library_name``. ``compound`` is a stable id
  ``<family or kind>_<index>``: ``flavonols_0042`` (a family member, weight from the family's share),
  ``minor_flavonols_0187`` / ``minor_unknown_1380`` (a minor active hosted by a relative of a flavonol or by an
  unknown);
  ``precursor_mz`` the main ion ([M-H]- or [M+H]+; adducts and isotopes of it also appear in the exports);
  ``rt_min`` the retention time before batch and run shifts; ``weight`` the compound's expected share of the
  assay's weighted sum of actives (see :func:`ms2img.synth.cohort.planted_actives`; listed when >= 0.005, so the
  weights of an assay sum to at most 1); ``library_name`` the PhenolicsDB name when the compound is a library
  standard (annotated in some exports), else empty. Written once per cohort (append keeps it: same world).
* ``cohort.json``: generator version, seed and polarity (append reads the world seed from it).
"""

from ms2img.io.msdial_writer import MSDIAL_HEADER
from ms2img.synth.accession import (
    ADDUCTS,
    BATCH_SIZE,
    DETECTION_LIMIT,
    HEIGHT_PER_MG,
    Accession,
    Batch,
    batch_of,
    simulate_accession,
)
from ms2img.synth.chemistry import (
    ASSAYS,
    CHEMOTYPES,
    FAMILIES,
    FAMILY_NAMES,
    MINOR_ACTIVES,
    PHENOLIC_FAMILIES,
    Latent,
    active_sum,
    assays_from_latent,
    draw_latent,
)
from ms2img.synth.cohort import (
    GENERATOR_VERSION,
    TRUTH_COLUMNS,
    CohortSummary,
    accession_name,
    accession_rng,
    cohort_assays,
    cohort_class_counts,
    make_cohort,
    planted_actives,
)
from ms2img.synth.library import (
    DATA_DIR,
    MAX_FRAGMENTS,
    background_library,
    family_of,
    phenolics_library,
    relative_spectra,
)
from ms2img.synth.world import POLARITIES, World, build_world

__all__ = [
    "ADDUCTS", "ASSAYS", "BATCH_SIZE", "CHEMOTYPES", "DATA_DIR", "DETECTION_LIMIT", "FAMILIES", "FAMILY_NAMES",
    "GENERATOR_VERSION", "HEIGHT_PER_MG", "MAX_FRAGMENTS", "MINOR_ACTIVES", "MSDIAL_HEADER", "PHENOLIC_FAMILIES",
    "POLARITIES", "TRUTH_COLUMNS", "Accession", "Batch", "CohortSummary", "Latent", "World",
    "accession_name", "accession_rng", "active_sum", "assays_from_latent", "background_library", "batch_of",
    "build_world", "cohort_assays", "cohort_class_counts", "draw_latent", "family_of", "make_cohort",
    "phenolics_library", "planted_actives", "relative_spectra", "simulate_accession",
]  # fmt: skip
