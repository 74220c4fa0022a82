"""Where a bulk ingestion job's files come from: an archive, a JSONL manifest or a folder.

Each source becomes `Staged`: files streamed into the staging folder under uuid names, plus one
`Rejection` with a short reason per item refused; a bad item never stops the others. The rules:

- Archives (zip, tar, tar.gz) are read one member at a time, never with `extractall`; a member's
  source id is its normalized POSIX path inside the archive. Absolute paths, `..`, drive letters,
  backslashes, links and special files are rejected; folders, hidden files and `__MACOSX/` are
  skipped without a word.
- Zip bombs: sizes are counted on the bytes actually decompressed, not on what headers claim. A
  member over `max_member_bytes` or `max_ratio` is rejected; going over `max_total_bytes`,
  `max_members` or the whole-archive ratio stops extraction and rejects the rest. Ratios are only
  checked past 1 MiB of output (a small, repetitive text is not a bomb), and tar members are not
  compressed one by one, so a tar only has the whole-stream ratio; a tar header (pax, long name)
  over 1 MiB stops it too, as tarfile would read it whole into memory.
- Manifest paths must resolve, symlinks followed, inside an allowed root. URLs must be http(s) on
  an allowed host, and each of at most 3 redirects is checked again. The host allow-list trusts
  DNS: it names hosts, not addresses.
- Folder walks skip hidden files and folders, do not enter symlinked folders and keep a symlinked
  file only if it points inside the folder.
- Every file's source id passes `rag.staging.check_source` as it is staged (length, control and
  bidirectional characters), so a bad name rejects that file alone, not the whole job.
"""

from rag.sources.archives import ArchiveLimits, extract_archive, is_archive
from rag.sources.common import Staged
from rag.sources.folders import stage_folder, walk_folder
from rag.sources.manifests import ManifestEntry, parse_manifest, stage_manifest

__all__ = [
    "ArchiveLimits",
    "ManifestEntry",
    "Staged",
    "extract_archive",
    "is_archive",
    "parse_manifest",
    "stage_folder",
    "stage_manifest",
    "walk_folder",
]
