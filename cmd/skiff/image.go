package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/skiff-sh/skiff/internal/image"
)

// imageRoot is where the agent keeps images in a data dir.
func imageRoot(dataDir string) string { return filepath.Join(dataDir, "agent", "images") }

func newImageCommand() *cobra.Command {
	var dataDir, registriesConfig string
	cmd := &cobra.Command{Use: "image", Short: "Manage the image store (pull, import, export, ls, inspect, rm, prune)"}
	cmd.PersistentFlags().StringVarP(&dataDir, "data-dir", "d", defaultDataDir, "data dir whose image store to use")
	cmd.PersistentFlags().StringVar(&registriesConfig, "registries-config", "/etc/skiff/registries.yaml", "mirrors, credentials and TLS per registry (k3s format)")
	open := func() (*image.Store, error) {
		regs, err := image.LoadRegistries(registriesConfig)
		if err != nil {
			return nil, err
		}
		return image.New(imageRoot(dataDir), image.Options{Registries: regs})
	}
	cmd.AddCommand(&cobra.Command{
		Use: "pull REF", Short: "Pull an image from its registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var bars *mpb.Progress
			if term.IsTerminal(int(os.Stdout.Fd())) {
				bars = mpb.NewWithContext(ctx, mpb.WithOutput(os.Stdout), mpb.WithWidth(40))
				ctx = image.WithProgress(ctx, barProgress{bars})
			}
			img, err := s.Pull(ctx, args[0])
			if bars != nil {
				// Shutdown, not Wait: a bar whose download failed, or whose
				// blob another pull stored meanwhile, never completes.
				bars.Shutdown()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Ref, img.Digest)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "import FILE...", Short: "Import docker save or OCI layout tarballs", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			for _, f := range args {
				imgs, err := s.Import(cmd.Context(), f)
				if err != nil {
					return err
				}
				for _, img := range imgs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", img.Ref, img.Digest)
				}
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "export REF FILE", Short: "Write an image as a docker save tarball", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			if _, err := s.Get(args[0]); err != nil {
				return err
			}
			// Written beside the destination and renamed: an existing file
			// is only replaced by a complete export.
			f, err := os.CreateTemp(filepath.Dir(args[1]), ".export-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := s.Export(args[0], f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), args[1])
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "REPOSITORY\tTAG\tDIGEST\tSIZE")
			for _, img := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", img.Repo, img.Tag, img.Digest.Hex[:12], humanSize(img.Size))
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "inspect REF", Short: "Show an image's configuration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			img, cfg, err := s.Inspect(args[0])
			if err != nil {
				return err
			}
			data, _ := json.MarshalIndent(map[string]any{"image": img, "config": cfg}, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(data))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "rm REF...", Short: "Remove images (refused while a container uses one)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			for _, ref := range args {
				if err := s.Delete(ref); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", ref)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "prune", Short: "Remove images, blobs and layers no container uses", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			res, err := s.Prune()
			if err != nil {
				return err
			}
			for _, ref := range res.Images {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", ref)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %d blobs and %d layers, %s freed\n", res.Blobs, res.Layers, humanSize(res.BytesFreed))
			return nil
		},
	})
	return cmd
}

// barProgress draws one bar per layer download.
type barProgress struct{ p *mpb.Progress }

func (b barProgress) Layer(d v1.Hash, size int64, r io.Reader) io.Reader {
	bar := b.p.AddBar(size,
		mpb.PrependDecorators(decor.Name(d.Hex[:12], decor.WC{W: 13}), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.Percentage()))
	pr, err := bar.ProxyReader(r)
	if err != nil {
		bar.Abort(true)
		return r
	}
	return pr
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}
