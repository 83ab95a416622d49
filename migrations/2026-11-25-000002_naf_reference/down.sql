DELETE FROM naf_codes;
