/** Tailwind CSS for the dashboard's styles (src/app/globals.css). */
export default {
  plugins: { "@tailwindcss/postcss": {} },
};
