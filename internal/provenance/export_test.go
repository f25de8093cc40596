package provenance

import "maps"

// Lookalikes returns a copy of the look-alike table, for tests.
func Lookalikes() map[rune]rune { return maps.Clone(confusables) }
