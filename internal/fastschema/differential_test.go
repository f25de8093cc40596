package fastschema

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/safejson"
)

// tally counts how fastschema and jsonschema/v6 judged the same instances.
type tally struct {
	bothValid, bothInvalid int
	conservative           int // fastschema invalid, v6 valid: allowed, costs speed
	unsound                int // fastschema valid, v6 invalid: must never happen
}

func (t *tally) add(fast, full bool) {
	switch {
	case fast && full:
		t.bothValid++
	case !fast && !full:
		t.bothInvalid++
	case !fast:
		t.conservative++
	default:
		t.unsound++
	}
}

func (t tally) total() int { return t.bothValid + t.bothInvalid + t.conservative + t.unsound }

// TestDifferential runs every corpus schema against its seed instances and
// their mutations, decoded with safejson (json.Number) and with
// encoding/json (float64), and compares fastschema with jsonschema/v6.
func TestDifferential(t *testing.T) {
	var all tally
	for _, e := range corpus(t) {
		t.Run(e.name, func(t *testing.T) {
			m := newMutator(t, e.schema)
			seen := map[string]bool{}
			var exact, floats tally
			rejected := 0
			for _, raw := range e.instances {
				seed := decodeInstance(t, string(raw))
				for _, inst := range m.mutations(seed) {
					b, err := json.Marshal(inst)
					require.NoError(t, err)
					if seen[string(b)] {
						continue
					}
					seen[string(b)] = true

					v, err := safejson.Decode(b, safejson.Limits{})
					if err != nil {
						rejected++ // e.g. 1e-400 is fine, numbers overflowing float64 are not
						continue
					}
					fast := e.fast.Valid(v)
					full := e.full.Validate(v) == nil
					exact.add(fast, full)
					if fast && !full {
						t.Errorf("unsound: fastschema accepts %s, jsonschema/v6 rejects it: %v", b, e.full.Validate(v))
					} else if !fast && full {
						t.Errorf("conservative: fastschema rejects %s, jsonschema/v6 accepts it", b)
					}

					var f any
					require.NoError(t, json.Unmarshal(b, &f))
					fast = e.fast.Valid(f)
					full = e.full.Validate(f) == nil
					floats.add(fast, full)
					if fast && !full {
						t.Errorf("unsound with float64 numbers: fastschema accepts %s, jsonschema/v6 rejects it", b)
					}
				}
			}
			assert.Positive(t, exact.bothValid, "no valid instance reached")
			if string(e.schema) != "true" {
				assert.Positive(t, exact.bothInvalid, "no invalid instance reached")
			}
			t.Logf("%d instances (%d not decodable): agree %d (%d valid, %d invalid), conservative %d, unsound %d; float64 decoding: agree %d of %d, conservative %d, unsound %d",
				exact.total(), rejected, exact.bothValid+exact.bothInvalid, exact.bothValid, exact.bothInvalid,
				exact.conservative, exact.unsound,
				floats.bothValid+floats.bothInvalid, floats.total(), floats.conservative, floats.unsound)
			all.bothValid += exact.bothValid
			all.bothInvalid += exact.bothInvalid
			all.conservative += exact.conservative
			all.unsound += exact.unsound
		})
	}
	t.Logf("all schemas: %d instances, agree %d (%d valid, %d invalid), conservative %d, unsound %d",
		all.total(), all.bothValid+all.bothInvalid, all.bothValid, all.bothInvalid, all.conservative, all.unsound)
	require.Zero(t, all.unsound)
}
