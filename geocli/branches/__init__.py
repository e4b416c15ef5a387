"""The model's branches (rgb, clip or hf_clip, ocr, seg), each runnable alone; ``build_branch(name, config)``.

Importing this package imports torch (it is only imported by commands, never at CLI start-up);
timm, open_clip, OCR engines and sentence-transformers load when a branch is built.
"""
from geocli.branches.base import BRANCHES, Branch, Preprocess, build_branch
from geocli.branches.clip import CLIPBranch
from geocli.branches.hf_clip import HFCLIPBranch
from geocli.branches.text import OCRBranch, OCROutput
from geocli.branches.rgb import RGBBranch
from geocli.branches.segmentation_branch import SegmentationBranch

__all__ = [
    "BRANCHES", "Branch", "CLIPBranch", "HFCLIPBranch", "OCRBranch", "OCROutput", "Preprocess", "RGBBranch",
    "SegmentationBranch", "build_branch",
]
