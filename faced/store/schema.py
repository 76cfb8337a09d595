"""The store's schema, as migrations: entry i migrates from version i to i+1.

Never edit a shipped entry; append a new one. `PRAGMA user_version` holds the version.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        digest TEXT,
        status TEXT NOT NULL CHECK (status IN ('faces', 'noface', 'error')),
        reason TEXT,
        width INTEGER NOT NULL DEFAULT 0,
        height INTEGER NOT NULL DEFAULT 0,
        detector TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        updated REAL NOT NULL
    );
    CREATE INDEX images_digest ON images (digest);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
        name TEXT UNIQUE,
        created REAL NOT NULL,
        retired REAL,
        merged_into INTEGER REFERENCES people (id)
    );
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        box_top INTEGER NOT NULL,
        box_right INTEGER NOT NULL,
        box_bottom INTEGER NOT NULL,
        box_left INTEGER NOT NULL,
        encoding BLOB NOT NULL,
        detector TEXT NOT NULL,
        model TEXT NOT NULL,
        person_id INTEGER REFERENCES people (id)
    );
    CREATE INDEX faces_image ON faces (image_id);
    CREATE INDEX faces_person ON faces (person_id);
    CREATE TABLE thumbs (
        face_id INTEGER PRIMARY KEY REFERENCES faces (id) ON DELETE CASCADE,
        jpeg BLOB NOT NULL
    );
    CREATE TABLE rejections (
        face_id INTEGER NOT NULL REFERENCES faces (id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES people (id),
        PRIMARY KEY (face_id, person_id)
    );
    CREATE TABLE folders (
        person_id INTEGER PRIMARY KEY,  -- 0 is the unknown folder
        folder TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE TABLE links (
        person_id INTEGER NOT NULL,
        link BLOB NOT NULL,
        image_id INTEGER NOT NULL,
        PRIMARY KEY (person_id, link)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: faces found in a video frame say which (milliseconds from the start; NULL: a photo).
    """
    ALTER TABLE faces ADD COLUMN frame_ms INTEGER;
    """,
    # 3: the re-cluster policy's state becomes one JSON record (it was two strings, one of
    # them "<time> <max face id>").
    """
    INSERT OR REPLACE INTO meta (key, value)
    SELECT 'recluster', json_object(
        'full_at', CAST(substr(f.value, 1, instr(f.value, ' ') - 1) AS REAL),
        'full_max_face', CAST(substr(f.value, instr(f.value, ' ') + 1) AS INTEGER),
        'clustered', COALESCE((SELECT value FROM meta WHERE key = 'clustered'), ''))
    FROM meta f WHERE f.key = 'full_recluster';
    DELETE FROM meta WHERE key IN ('full_recluster', 'clustered');
    """,
    # 4: what the user decided outlives the faces it was about. A photo that is re-read or
    # goes away leaves its faces' people and rejections here, keyed by content hash and box,
    # for the next faces found in the same bytes to take over. People can be hidden.
    """
    CREATE TABLE departed (
        digest TEXT NOT NULL,
        box_top INTEGER NOT NULL,
        box_right INTEGER NOT NULL,
        box_bottom INTEGER NOT NULL,
        box_left INTEGER NOT NULL,
        person_id INTEGER,
        rejected TEXT NOT NULL DEFAULT '',  -- person ids, comma-separated
        since REAL NOT NULL
    );
    CREATE INDEX departed_digest ON departed (digest);
    ALTER TABLE people ADD COLUMN hidden REAL;
    """,
    # 5: each face's detector score (its margin over the detector's own line): a weak
    # detection may join a person but never starts or bridges one. NULL for faces recorded
    # before (counted as faces).
    """
    ALTER TABLE faces ADD COLUMN score REAL;
    """,
    # 6: a face kept from a video says which track it was followed in (its number in the
    # clip) and the time that track covers (ms): a track stays one person, and a long one
    # proves a person by itself. NULL for photos.
    """
    ALTER TABLE faces ADD COLUMN track INTEGER;
    ALTER TABLE faces ADD COLUMN track_start INTEGER;
    ALTER TABLE faces ADD COLUMN track_end INTEGER;
    CREATE INDEX faces_track ON faces (image_id, track) WHERE track IS NOT NULL;
    """,
    # 7: a counter SQLite itself moves whenever who is in which photo, a photo's path, or a
    # person's name or visibility changes, whichever connection writes: a writer's people
    # index stays valid while it holds (faced.store.people.People.entries).
    """
    CREATE TABLE revision (n INTEGER NOT NULL);
    INSERT INTO revision (n) VALUES (0);
    CREATE TRIGGER faces_person AFTER UPDATE OF person_id ON faces
    WHEN OLD.person_id IS NOT NEW.person_id
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER faces_born AFTER INSERT ON faces WHEN NEW.person_id IS NOT NULL
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER faces_gone AFTER DELETE ON faces WHEN OLD.person_id IS NOT NULL
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER images_gone AFTER DELETE ON images
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER images_moved AFTER UPDATE OF path ON images
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER people_shown AFTER UPDATE OF name, hidden ON people
    BEGIN UPDATE revision SET n = n + 1; END;
    """,
    # 8: a departed face of a clip keeps when it was seen and in which track: a clip read
    # again samples other moments, and its faces find their decisions by track and time, not
    # by box alone (faced.people.identity.same_faces). NULL for photos.
    """
    ALTER TABLE departed ADD COLUMN frame_ms INTEGER;
    ALTER TABLE departed ADD COLUMN track INTEGER;
    ALTER TABLE departed ADD COLUMN track_start INTEGER;
    ALTER TABLE departed ADD COLUMN track_end INTEGER;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
