/// The team store's tables, as numbered migrations of one statement or more: a store at
/// version N has the first N.
///
/// Every row an agent follows carries a change number from one sequence, taken again by a
/// trigger whenever the row changes, so "everything since change C" is one index range. The
/// outbox keeps, for each entry, who staged it (`origin`, an agent's mirror) and under which
/// sequence number there (`origin_seq`), so a push repeated after a lost answer adds nothing,
/// and the lease of the worker sending it with a fencing token (`fence`), so a worker whose
/// lease ran out cannot settle an entry another worker took since.
enum TeamSchema {
    static let migrations: [[String]] = [
        [
            """
            CREATE SEQUENCE team_change_numbers
            """,
            """
            CREATE SEQUENCE team_fences
            """,
            """
            CREATE FUNCTION team_next_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.change_no := nextval('team_change_numbers');
                RETURN NEW;
            END $$
            """,
            """
            CREATE TABLE team_contacts (
                id TEXT PRIMARY KEY,
                body TEXT,
                email TEXT,
                external_id TEXT,
                role TEXT,
                name TEXT,
                phone TEXT,
                updated_at BIGINT NOT NULL DEFAULT 0,
                state TEXT NOT NULL DEFAULT 'synced' CHECK (state IN ('synced', 'tombstoned')),
                fetched_at BIGINT,
                change_no BIGINT NOT NULL DEFAULT nextval('team_change_numbers')
            )
            """,
            """
            CREATE INDEX team_contacts_by_change ON team_contacts (change_no)
            """,
            """
            CREATE INDEX team_contacts_by_email ON team_contacts (lower(email))
            """,
            """
            CREATE TRIGGER team_contacts_change BEFORE UPDATE ON team_contacts
                FOR EACH ROW EXECUTE FUNCTION team_next_change()
            """,
            """
            CREATE TABLE team_tags (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                removed BOOLEAN NOT NULL DEFAULT FALSE,
                change_no BIGINT NOT NULL DEFAULT nextval('team_change_numbers')
            )
            """,
            """
            CREATE TABLE team_companies (
                id TEXT PRIMARY KEY,
                company_id TEXT,
                name TEXT,
                body TEXT,
                removed BOOLEAN NOT NULL DEFAULT FALSE,
                change_no BIGINT NOT NULL DEFAULT nextval('team_change_numbers')
            )
            """,
            """
            CREATE TABLE team_segments (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                removed BOOLEAN NOT NULL DEFAULT FALSE,
                change_no BIGINT NOT NULL DEFAULT nextval('team_change_numbers')
            )
            """,
            """
            CREATE TRIGGER team_tags_change BEFORE UPDATE ON team_tags FOR EACH ROW EXECUTE FUNCTION team_next_change()
            """,
            """
            CREATE TRIGGER team_companies_change BEFORE UPDATE ON team_companies
                FOR EACH ROW EXECUTE FUNCTION team_next_change()
            """,
            """
            CREATE TRIGGER team_segments_change BEFORE UPDATE ON team_segments
                FOR EACH ROW EXECUTE FUNCTION team_next_change()
            """,
            """
            -- A contact's links change with the contact: its change number moves when they do.
            CREATE TABLE team_contact_links (
                contact_id TEXT NOT NULL REFERENCES team_contacts (id) ON DELETE CASCADE,
                kind SMALLINT NOT NULL,
                target TEXT NOT NULL,
                PRIMARY KEY (contact_id, kind, target)
            )
            """,
            """
            CREATE TABLE team_pull_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
            """,
            """
            CREATE TABLE team_outbox (
                seq BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN (
                    'create_contact', 'send_message', 'tag_contact', 'untag_contact', 'update_contact',
                    'archive_contact', 'unarchive_contact', 'delete_contact', 'add_note')),
                contact_id TEXT,
                depends_on BIGINT REFERENCES team_outbox (seq),
                payload TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN (
                    'pending', 'in_flight', 'sent', 'failed', 'unknown', 'conflict')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at BIGINT,
                last_error_status INTEGER,
                last_error_code TEXT,
                last_error_message TEXT,
                last_error_request_id TEXT,
                remote_id TEXT,
                origin TEXT NOT NULL,
                origin_seq BIGINT NOT NULL,
                lease_owner TEXT,
                lease_until TIMESTAMPTZ,
                fence BIGINT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                change_no BIGINT NOT NULL DEFAULT nextval('team_change_numbers'),
                UNIQUE (origin, origin_seq)
            )
            """,
            """
            CREATE INDEX team_outbox_ready ON team_outbox (seq) WHERE state = 'pending'
            """,
            """
            CREATE INDEX team_outbox_leased ON team_outbox (lease_until) WHERE state = 'in_flight'
            """,
            """
            CREATE INDEX team_outbox_by_change ON team_outbox (change_no)
            """,
            """
            CREATE TRIGGER team_outbox_change BEFORE UPDATE ON team_outbox
                FOR EACH ROW EXECUTE FUNCTION team_next_change()
            """,
            """
            -- Intercom's rate budget as the last answer to any worker said it: one budget for all.
            CREATE TABLE team_rate_budget (
                singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                window_limit INTEGER,
                remaining INTEGER,
                reset_at BIGINT,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
        ],
        [
            """
            -- What a worker's flush learnt that the agent who staged the entry needs: the contact
            -- a create took over and the fields Intercom held other values for, an update's
            -- conflicting fields.
            ALTER TABLE team_outbox ADD COLUMN outcome TEXT
            """,
            """
            -- When a person last queued the entry again at its origin (`outbox retry`): a push
            -- with a new mark queues a failed or unknown entry again, a repeated one does not.
            ALTER TABLE team_outbox ADD COLUMN retry_mark BIGINT
            """,
            """
            ALTER TABLE team_outbox DROP CONSTRAINT team_outbox_state_check
            """,
            """
            ALTER TABLE team_outbox ADD CONSTRAINT team_outbox_state_check CHECK (state IN (
                'pending', 'in_flight', 'sent', 'failed', 'unknown', 'conflict', 'superseded'))
            """,
            """
            CREATE INDEX team_outbox_by_contact ON team_outbox (contact_id, seq)
            """,
            """
            -- Change numbers are taken under one transaction-long lock, so they commit in the
            -- order they were taken: a reader that has seen change N has seen every change
            -- before it, and "everything after the last change I read" misses none.
            CREATE OR REPLACE FUNCTION team_next_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(\(changeLock));
                NEW.change_no := nextval('team_change_numbers');
                RETURN NEW;
            END $$
            """,
        ]
            // Every followed table takes its change number from the trigger on insert too.
            + ["team_contacts", "team_tags", "team_companies", "team_segments", "team_outbox"].flatMap { table in
                [
                    "DROP TRIGGER \(table)_change ON \(table)",
                    """
                    CREATE TRIGGER \(table)_change BEFORE INSERT OR UPDATE ON \(table)
                        FOR EACH ROW EXECUTE FUNCTION team_next_change()
                    """,
                ]
            } + [
                """
                CREATE INDEX team_outbox_by_origin ON team_outbox (origin, change_no)
                """,
                """
                ALTER TABLE team_segments ADD COLUMN person_type TEXT, ADD COLUMN created_at BIGINT,
                    ADD COLUMN updated_at BIGINT
                """,
                """
                -- Who pulls for the team, while one does (`pg_advisory_lock` is the truth; this names it).
                CREATE TABLE team_puller (
                    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                    holder TEXT NOT NULL,
                    since TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """,
                """
                -- The Intercom workspace the team's outbox and replica belong to, as `GET /me` named it.
                CREATE TABLE team_workspace (
                    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                    workspace_id TEXT NOT NULL,
                    origin TEXT NOT NULL
                )
                """,
            ],
        [
            """
            -- Nothing reads contacts by email in the store: agents follow it by change number,
            -- and the index would cost a third of a contact's insert.
            DROP INDEX team_contacts_by_email
            """,
            """
            -- An inserted row takes its change number from its column's default, after the
            -- statement took the writers' lock: numbers commit in the order they are taken,
            -- with no trigger call for each row.
            CREATE FUNCTION team_change_lock() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(\(changeLock));
                RETURN NULL;
            END $$
            """,
        ]
            + ["team_contacts", "team_tags", "team_companies", "team_segments", "team_outbox"].flatMap { table in
                [
                    "DROP TRIGGER \(table)_change ON \(table)",
                    """
                    CREATE TRIGGER \(table)_change BEFORE UPDATE ON \(table)
                        FOR EACH ROW EXECUTE FUNCTION team_next_change()
                    """,
                    """
                    CREATE TRIGGER \(table)_insert_lock BEFORE INSERT ON \(table)
                        FOR EACH STATEMENT EXECUTE FUNCTION team_change_lock()
                    """,
                ]
            },
        [
            """
            -- The claim that put an entry in flight: a claim tried again after its answer was lost
            -- finds the entries its first try took, rather than taking others and leaving those
            -- in flight until their lease runs out.
            ALTER TABLE team_outbox ADD COLUMN claim_id TEXT
            """
        ],
        [
            """
            -- The store's name for good: agents follow one store's change numbers, and tell a
            -- store rebuilt at the same address from the one they followed.
            ALTER TABLE team_schema ADD COLUMN store_id TEXT NOT NULL DEFAULT gen_random_uuid()::text
            """
        ],
    ]

    /// The version this intercom-sync writes: the number of its migrations.
    static var version: Int { migrations.count }

    /// The key of the advisory lock migrations take, so that processes opening a new store
    /// at once migrate it once.
    static let migrationLock: Int64 = 0x1C5F_7E4D_0001
    /// The key of the lock every writing transaction takes first, and the change-number
    /// trigger takes again: writers commit one at a time, in the order of their change
    /// numbers.
    static let changeLock: Int64 = 0x1B97_E4D0_0002
    /// The key of the session lock the team's one puller holds while it pulls.
    static let pullerLock: Int64 = 0x1C5F_7E4D_0003
}
