"""ms2img: bioactivity prediction from untargeted LC-MS/MS data as MS2toImg fingerprint images."""

__version__ = "0.1.0"
