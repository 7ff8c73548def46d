import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The dev server forwards API calls to a local `houston up` so `npm run dev` works against it.
const apiTarget = process.env.HOUSTON_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/v1': { target: apiTarget, changeOrigin: false },
      '/.well-known': { target: apiTarget, changeOrigin: false },
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: true,
  },
  test: {
    include: ['src/**/*.test.{ts,tsx}'],
    environment: 'node',
  },
});
