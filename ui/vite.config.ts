import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  // The Tauri window loads files from ui/dist; no inline scripts (CSP `script-src 'self'`).
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, modulePreload: { polyfill: false } },
  // Tests read the app's Rust sources (the command contract, src/lib/backend/contract.test.ts);
  // the dev server itself serves ui/ only.
  server: { port: 5173, strictPort: true, fs: { allow: mode === 'test' ? ['..'] : ['.'] } },
  // Component tests mount Svelte's browser build in jsdom.
  resolve: mode === 'test' ? { conditions: ['browser'] } : undefined,
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test-setup.ts'],
  },
}));
