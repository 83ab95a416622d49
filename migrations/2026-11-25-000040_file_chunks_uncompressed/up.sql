-- Upload chunks are spreadsheets: XLSX is already deflated and CSV is read
-- once, then purged after IMPORT_FILE_RETENTION. The bench profile showed
-- PostgreSQL's TOAST compression (pglz) as the largest single frame of a
-- re-import, paid on the upload path. EXTERNAL keeps out-of-line storage and
-- skips compression; it applies to chunks written from now on.
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
