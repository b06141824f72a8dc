package reshard

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

const unitConfig = `listen: 127.0.0.1:0
users:
  - {name: app, password: app}
shards:
  - {name: shard0, primary: "127.0.0.1:5432", hash: [{modulus: 2, remainder: 0}]}
  - {name: shard1, primary: "127.0.0.1:5433", hash: [{modulus: 2, remainder: 1}]}
  - {name: shard2, primary: "127.0.0.1:5434", hash: []}
databases:
  - name: app
    sharded_tables:
      - {table: kv, column: id, type: int, function: hash}
      - {table: dkv, column: id, type: text, function: directory, directory: {node: "127.0.0.1:5432"}}
`

func unitCfg(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text), "unit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The saved placement survives JSON (a spare's empty slot list stays
// empty, not "default") and plans the same moves after the switch.
func TestPlacementRoundTrip(t *testing.T) {
	cur := unitCfg(t, unitConfig)
	next := unitCfg(t, strings.Replace(strings.Replace(unitConfig, "hash: [{modulus: 2, remainder: 0}]", "hash: [{modulus: 4, remainder: 0}]", 1),
		"hash: []", "hash: [{modulus: 4, remainder: 2}]", 1))
	b, err := json.Marshal(placementOf(cur))
	if err != nil {
		t.Fatal(err)
	}
	var back placement
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hash[2] == nil || len(back.Hash[2]) != 0 {
		t.Fatalf("the spare's slots after JSON: %#v", back.Hash[2])
	}
	p1, err := newPlan(cur, next, "x")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := newPlan(back.on(next), next, "x") // as after the switch
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.moves) != 1 || len(p2.moves) != 1 || p1.moves[0].Where != p2.moves[0].Where || p1.sources[0].slot != "pgrouter_reshard_x_0" {
		t.Fatalf("moves before %+v, after %+v", p1.moves, p2.moves)
	}
	if samePlacement(cur, next) || !samePlacement(back.on(next), cur) {
		t.Fatal("samePlacement")
	}
}

// A directory move selects exactly its keys, quoted for SQL.
func TestDirMoveMoves(t *testing.T) {
	cfg := unitCfg(t, unitConfig)
	d := &dirMove{Database: "app", Table: "dkv", To: "shard2", From: map[string][]string{"shard0": {"a", "it's"}}}
	moves, err := d.moves(cfg)
	if err != nil || len(moves) != 1 {
		t.Fatalf("%v %v", moves, err)
	}
	m := moves[0]
	if m.Where != `"id" IN ('a', 'it''s')` || m.From != "shard0" || m.To != "shard2" {
		t.Fatalf("move %+v", m)
	}
	if !m.Has(sharding.Key{Bytes: []byte("it's")}) || m.Has(sharding.Key{Bytes: []byte("b")}) || m.Has(sharding.Key{Null: true}) {
		t.Fatal("Has")
	}
	if _, err := (&dirMove{Database: "app", Table: "kv", To: "shard2"}).moves(cfg); err == nil {
		t.Fatal("a hash table accepted as a directory move")
	}
}

// The state file is replaced whole; diff names what differs either way.
func TestStateAndDiff(t *testing.T) {
	dir := t.TempDir()
	st := &state{ID: "1", Phase: PhaseCopy, Moves: []moveProg{{Table: "kv", Done: []bool{true, false}}}}
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil || !reflect.DeepEqual(got.Moves, st.Moves) || got.Phase != PhaseCopy {
		t.Fatalf("%+v %v", got, err)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(dir), ".state.json.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if none, err := loadState(filepath.Join(dir, "none")); none != nil || err != nil {
		t.Fatalf("no state: %v %v", none, err)
	}
	os.WriteFile(statePath(dir), []byte("{"), 0o600)
	if _, err := loadState(dir); err == nil {
		t.Fatal("a broken state file was accepted")
	}
	if d := diff(map[string]string{"1": "a", "2": "b"}, map[string]string{"2": "c", "3": "d"}); !reflect.DeepEqual(d, []string{"1", "2", "3"}) {
		t.Fatalf("diff %v", d)
	}
}
