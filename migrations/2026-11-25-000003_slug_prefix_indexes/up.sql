-- Slug clashes get a numeric suffix (`lyon-2`); finding the highest suffix
-- in use is a prefix search, which these indexes serve.
CREATE INDEX categories_slug_prefix_idx ON categories (slug text_pattern_ops);
CREATE INDEX sous_categories_slug_prefix_idx ON sous_categories (slug text_pattern_ops);
CREATE INDEX villes_slug_prefix_idx ON villes (slug text_pattern_ops);
