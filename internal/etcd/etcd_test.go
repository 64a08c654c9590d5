package etcd

import (
	"context"
	"testing"
	"time"
)

func TestEmbeddedMemberRestartsWithItsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := time.Now()
	d, err := Open(ctx, Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded etcd ready in %v", time.Since(start))
	if _, err := d.Client.Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(ctx, Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	resp, err := d.Client.Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart got %v", resp.Kvs)
	}
}
