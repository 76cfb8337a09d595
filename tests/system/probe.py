"""Run by the end-to-end tier inside faced.service's own sandbox: the native libraries faced
uses must load and compute there (MemoryDenyWriteExecute, the system call filter, no /proc)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import dlib
import faiss
import numpy as np
from sklearn.cluster import DBSCAN

x = np.random.default_rng(0).normal(size=(2000, 128)).astype(np.float32)
index = faiss.IndexFlatL2(128)
index.add(x)
_, ids = index.search(x[:10], 2)
labels = DBSCAN(eps=0.5, min_samples=1, algorithm="brute", n_jobs=1).fit_predict(x[:200])
grey = cv2.cvtColor(np.zeros((64, 64, 3), np.uint8), cv2.COLOR_RGB2GRAY)
found = dlib.get_frontal_face_detector()(np.zeros((64, 64, 3), np.uint8))
print(
    f"probe ok: numpy {np.__version__}, faiss {faiss.__version__}, OpenCV {cv2.__version__}, "
    f"dlib {dlib.__version__}, {len(set(labels))} DBSCAN labels"
)
