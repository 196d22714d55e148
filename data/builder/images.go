package builder

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // register JPEG for collections shipped as JPEG
	"image/png"
	"os"
	"path/filepath"
	"sync"

	"github.com/medgr2/medgr2/data"
	"github.com/nfnt/resize"
	_ "golang.org/x/image/bmp"  // register BMP
	_ "golang.org/x/image/tiff" // register TIFF
	_ "golang.org/x/image/webp" // register WebP
)

// ErrImage reports a source image that cannot be read or converted.
var ErrImage = errors.New("builder: bad image")

// maxSourcePixels bounds the decoded size of a source image (a decompression
// bomb guard): 64 megapixels.
const maxSourcePixels = 64 << 20

// imageRef ties a source image of a collection to its output file.
type imageRef struct {
	src     data.Image
	srcPath string // file on disk
	outPath string // relative to the output folder, slash-separated
	stem    string // id fragment, unique within the collection
	split   string
	gray    bool // write a single-channel PNG
}

// writeImages converts every image to a size×size PNG under outDir, using
// workers goroutines; it stops at the first error or when ctx ends.
func writeImages(ctx context.Context, outDir string, refs []imageRef, size, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan imageRef)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range jobs {
				if err := convertImage(r, filepath.Join(outDir, filepath.FromSlash(r.outPath)), size); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, r := range refs {
		select {
		case jobs <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}
	return ctx.Err()
}

// convertImage decodes src, resizes it to size×size (bilinear) and writes an
// 8-bit gray or RGB PNG to dst.
func convertImage(r imageRef, dst string, size int) error {
	img, err := decodeBounded(r.srcPath)
	if err != nil {
		return err
	}
	small := resize.Resize(uint(size), uint(size), img, resize.Bilinear)
	var out image.Image
	if r.gray {
		g := image.NewGray(image.Rect(0, 0, size, size))
		draw.Draw(g, g.Bounds(), small, small.Bounds().Min, draw.Src)
		out = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, size, size))
		draw.Draw(c, c.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
		draw.Draw(c, c.Bounds(), small, small.Bounds().Min, draw.Over)
		out = c
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	err = enc.Encode(f, out)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("builder: write %s: %w", dst, err)
	}
	return nil
}

func decodeBounded(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImage, err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxSourcePixels {
		return nil, fmt.Errorf("%w: %s: %dx%d pixels", ErrImage, path, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImage, err)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrImage, path, err)
	}
	return img, nil
}
