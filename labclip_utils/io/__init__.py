"""The package's floor: files, hashes, downloads and mirrors. It imports nothing of ``labclip_utils`` above it.

- :mod:`~labclip_utils.io.files`: atomic file and folder writes, temporary names, locks, shared-folder permissions;
- :mod:`~labclip_utils.io.hashing`: SHA-256 of files, tensors, JSON keys and source code, and ``SHA256SUMS`` manifests;
- :mod:`~labclip_utils.io.downloads`: resumable, checksummed, atomic downloads and safe archive extraction;
- :mod:`~labclip_utils.io.mirror`: serving a folder of downloads to a classroom.
"""
